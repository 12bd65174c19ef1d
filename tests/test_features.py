"""Daily site features: known answers on a hand-made Dataset, split of periods, netCDF round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mdpl.data.features import FORCING_FEATURES, STATIC_FEATURES, SiteFeatures, site_features, split_periods
from mdpl.data.schema import assemble
from mdpl.errors import DataError


def _hourly_site(n_days=3, start="2005-03-01 00:00", extra_steps=0, **attrs):
    """Hourly canonical Dataset with simple known forcing (Tair ramps 0..23 K above 280 K each day)."""
    n = n_days * 24 + extra_steps
    times = pd.date_range(start, periods=n, freq="h").values
    hour = np.arange(n) % 24
    forcing = {
        "SWdown": np.where((hour >= 6) & (hour < 18), 400.0, 0.0),
        "LWdown": np.full(n, 300.0),
        "Tair": 280.0 + hour,
        "Qair": np.full(n, 0.005),
        "Psurf": np.full(n, 1.0e5),
        "Wind": np.full(n, 2.0),
        "Rainf": np.where(hour == 12, 1.0 / 3600.0, 0.0),  # 1 mm in one hour each day
        "Snowf": np.zeros(n),
        "CO2air": np.full(n, 380.0),
        "LAI": np.full(n, 2.0),
    }
    qle = np.full(n, 50.0)
    qle[24:48] = 100.0  # day 2: 100 W m-2
    measured = np.ones(n, bool)
    measured[24 : 24 + 7] = False  # day 2: 17/24 measured (< 0.75)
    measured[0:6] = False  # day 1: 18/24 measured (= 0.75)
    base = dict(site="XX-Tst", site_name="test", igbp="GRA", pft_group="grassland", latitude=45.0,
                longitude=10.0, elevation_m=100.0, reference_height_m=3.0, canopy_height_m=0.3,
                time_step_s=3600, source="test", filled="")
    base.update(attrs)
    return assemble(times, forcing, base, fluxes={"Qle": qle}, measured={"Qle": measured})


def test_daily_means_extremes_and_units():
    f = site_features(_hourly_site())
    assert f.forcing.shape == (3, len(FORCING_FEATURES)) and f.forcing.dtype == np.float32
    np.testing.assert_allclose(f.forcing_var("Tair"), 280.0 + 11.5)
    np.testing.assert_allclose(f.forcing_var("Tair_max"), 303.0)
    np.testing.assert_allclose(f.forcing_var("Tair_min"), 280.0)
    np.testing.assert_allclose(f.forcing_var("SWdown"), 200.0)
    np.testing.assert_allclose(f.forcing_var("Precip"), 1.0, rtol=1e-5)  # mm per day
    assert np.all(f.forcing_var("VPD") > 0)
    assert list(f.doy) == [60, 61, 62]
    assert f.static.shape == (len(STATIC_FEATURES),)
    assert f.static_var("pft_grassland") == 1.0 and f.static_var("pft_woodland") == 0.0
    assert f.static_var("precip_mm_yr") == pytest.approx(365.25, rel=1e-5)


def test_vpd_known_answer():
    # saturated air has no deficit; dry air has the full saturation vapour pressure (~611 Pa at 0 degC)
    ds = _hourly_site()
    ds["Tair"][:] = 273.15
    ds["Qair"][:] = 0.0
    f = site_features(ds)
    np.testing.assert_allclose(f.forcing_var("VPD"), 611.2, rtol=1e-4)


def test_measured_day_threshold():
    f = site_features(_hourly_site(), min_measured_fraction=0.75)
    assert f.obs_mask["Qle"].tolist() == [True, False, True]  # 18/24 kept, 17/24 dropped
    np.testing.assert_allclose(f.obs["Qle"][[0, 2]], 50.0)
    assert np.isnan(f.obs["Qle"][1])
    assert not f.obs_mask["NEE"].any()  # absent flux: never measured
    f_strict = site_features(_hourly_site(), min_measured_fraction=1.0)
    assert f_strict.obs_mask["Qle"].tolist() == [False, False, True]


def test_partial_days_dropped():
    f = site_features(_hourly_site(n_days=3, extra_steps=5))
    assert f.n_days == 3


def test_missing_attribute_names_site():
    ds = _hourly_site()
    del ds.attrs["canopy_height_m"]
    with pytest.raises(DataError, match="XX-Tst.*canopy_height_m"):
        site_features(ds)


def test_netcdf_round_trip(tmp_path):
    f = site_features(_hourly_site())
    path = tmp_path / "f.nc"
    f.to_dataset().to_netcdf(path)
    import xarray as xr

    with xr.open_dataset(path) as ds:
        g = SiteFeatures.from_dataset(ds.load())
    assert (g.site, g.igbp, g.pft_group) == (f.site, f.igbp, f.pft_group)
    assert g.days.equals(f.days)
    np.testing.assert_array_equal(g.forcing, f.forcing)
    np.testing.assert_array_equal(g.obs_mask["Qle"], f.obs_mask["Qle"])
    np.testing.assert_array_equal(g.obs["Qle"], f.obs["Qle"])
    assert g.forcing_names == f.forcing_names and g.static_names == f.static_names


def test_split_last_year_when_two_years():
    days = pd.date_range("2008-01-01", "2009-12-31", freq="D")
    train, test = split_periods(days)
    assert test.sum() == 365 and not (train & test).any() and (train | test).all()
    assert days[test].year.unique().tolist() == [2009]


def test_split_week_blocks_when_one_year():
    days = pd.date_range("2005-01-01", "2005-12-31", freq="D")
    train, test = split_periods(days)
    held = np.flatnonzero(test)
    assert held[0] == 84 and test[84:112].all() and not test[:84].any()  # the 4th 28-day block
    assert 0.2 < test.mean() < 0.3
    t2 = split_periods(days)[1]
    np.testing.assert_array_equal(test, t2)  # deterministic
    # every season appears in both parts
    assert set(days[test].quarter) == set(days[train].quarter) == {1, 2, 3, 4}


def test_split_ignores_short_trailing_year():
    days = pd.date_range("2005-01-01", "2006-02-15", freq="D")  # one full year + 46 days
    train, test = split_periods(days)
    assert days[test].year.min() == 2005  # fell back to blocks, not "last year" = 46 days
