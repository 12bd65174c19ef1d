"""The stochastic weather generator: determinism, physical ranges, solar geometry, seasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mdpl.data import solar
from mdpl.data.schema import FLUX_VARS, FORCING_VARS, SITE_ATTRS, measured_name
from mdpl.data.synthetic import Climate, default_sites, generate_site


@pytest.fixture(scope="module")
def sites():
    return default_sites(years=2, seed=0)


def test_canonical_schema(sites):
    for ds in sites:
        assert list(ds.sizes) == ["time"]
        for v, units in {**FORCING_VARS, **FLUX_VARS}.items():
            assert ds[v].attrs["units"] == units
        for f in FLUX_VARS:
            assert ds[f].isnull().all() and not ds[measured_name(f)].any()
        for a in SITE_ATTRS:
            assert a in ds.attrs, a
        assert ds.attrs["source"] == "synthetic" and ds.attrs["time_step_s"] == 1800
        assert np.all(np.diff(ds.time.values) == np.timedelta64(1800, "s"))
        for v in FORCING_VARS:
            assert np.isfinite(ds[v].values).all(), v


def test_five_twins_at_catalogue_positions(sites):
    assert [d.attrs["site"] for d in sites] == ["DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag"]
    assert [d.attrs["pft_group"] for d in sites] == ["cultivation", "grassland", "cultivation", "woodland", "evergreen_forest"]
    assert sites[3].attrs["latitude"] == pytest.approx(-25.0197)


def test_deterministic_from_seed():
    kw = dict(latitude=50.0, longitude=5.0, elevation_m=200.0, igbp="DBF", years=0.2)
    a, b, c = generate_site(seed=3, **kw), generate_site(seed=3, **kw), generate_site(seed=4, **kw)
    for v in FORCING_VARS:
        np.testing.assert_array_equal(a[v].values, b[v].values)
    assert not np.allclose(a["Tair"].values, c["Tair"].values)


def test_plausible_ranges(sites):
    for ds in sites:
        t = ds["Tair"].values
        assert 220 < t.min() and t.max() < 325
        assert 0 <= ds["SWdown"].min() and ds["SWdown"].max() < 1200
        assert 100 < ds["LWdown"].min() and ds["LWdown"].max() < 550
        # Qair below saturation everywhere (RH bounded by 1)
        from mdpl.data.fill import rh_from_qair
        rh = rh_from_qair(ds["Qair"].values, t, ds["Psurf"].values)
        assert rh.max() <= 1.0 + 1e-9 and rh.min() >= 0.05 - 1e-9
        assert 8e4 < ds["Psurf"].min() and ds["Psurf"].max() < 1.06e5
        assert 0 < ds["Wind"].min() and ds["Wind"].max() <= 30
        assert (ds["Rainf"] >= 0).all() and (ds["Snowf"] >= 0).all()
        assert 330 < ds["CO2air"].mean() < 420
        # snow only when cold
        assert (ds["Tair"].values[ds["Snowf"].values > 0] < 274.2).all()
    # annual precipitation (mm) in the right ballpark for each climate
    totals = [float((d.Rainf + d.Snowf).sum()) * 1800 / 2 for d in sites]
    assert 300 < totals[0] < 1300  # Denmark
    assert totals[4] > 1500  # Borneo rain forest
    assert totals[4] > max(totals[:4])


def test_energy_balance_plausible(sites):
    """Annual-mean net radiation with a typical albedo and surface temperature is positive and bounded."""
    for ds in sites:
        sw, lw, t = ds["SWdown"].values, ds["LWdown"].values, ds["Tair"].values
        rnet = 0.8 * sw + lw - 0.97 * 5.67e-8 * t**4
        assert 20 < rnet.mean() < 200, ds.attrs["site"]
        assert 80 < sw.mean() < 320


def test_swdown_zero_at_night_and_bounded_by_toa(sites):
    for ds in sites:
        lat, lon = ds.attrs["latitude"], ds.attrs["longitude"]
        utc = ds.time.values - np.timedelta64(int(ds.attrs["utc_offset_h"] * 3600), "s")
        toa = solar.toa_step_mean(utc, 1800, lat, lon)
        sw = ds["SWdown"].values
        assert np.all(sw[toa == 0] == 0)
        assert np.all(sw <= toa + 1e-9)
        # daylight steps mostly lit: clear-sky transmissivity 0.5-0.85 at high sun
        high = toa > 800
        assert 0.3 < np.median(sw[high] / toa[high]) < 0.85


def test_solar_noon_and_toa_known_values():
    # equinox, equator, Greenwich: sun near zenith at 12:00 UTC (within equation of time)
    t = np.array(["2005-03-20T12:07:00"], dtype="datetime64[ns]")
    assert solar.cos_zenith(t, 0.0, 0.0)[0] > 0.999
    # daily mean TOA at the equator near equinox ~ S0 * factor / pi ~ 435 W m-2
    day = np.arange(np.datetime64("2005-03-21T00:00"), np.datetime64("2005-03-22T00:00"), np.timedelta64(30, "m"))
    assert solar.toa_step_mean(day, 1800, 0.0, 0.0).mean() == pytest.approx(1361 * 0.9975 / np.pi, rel=0.01)
    # polar night: no sun at 80 N at the winter solstice
    day = np.arange(np.datetime64("2005-12-21T00:00"), np.datetime64("2005-12-22T00:00"), np.timedelta64(30, "m"))
    assert solar.toa_step_mean(day, 1800, 80.0, 0.0).max() == 0.0


def test_seasonal_cycle_sign_by_hemisphere():
    kw = dict(longitude=0.0, elevation_m=0.0, igbp="DBF", years=1, seed=1)
    north = generate_site(latitude=50.0, **kw)
    south = generate_site(latitude=-50.0, **kw)
    for ds, sign in ((north, 1), (south, -1)):
        month = pd.DatetimeIndex(ds.time.values).month
        jja = np.isin(month, [6, 7, 8])
        djf = np.isin(month, [12, 1, 2])
        for v in ("Tair", "SWdown", "LAI"):
            diff = ds[v].values[jja].mean() - ds[v].values[djf].mean()
            assert sign * diff > 0, (ds.attrs["latitude"], v)


def test_diurnal_cycle_peaks_in_afternoon(sites):
    ds = sites[2]  # ES-ES2
    hour_utc = pd.DatetimeIndex(ds.time.values).hour + 0.5  # local standard time (UTC+0 at ES-ES2)
    prof = pd.Series(ds["Tair"].values).groupby(hour_utc).mean()
    assert 12 <= prof.idxmax() <= 17
    rh_prof = pd.Series(ds["Qair"].values / np.exp(0.0622 * (ds["Tair"].values - 273.15))).groupby(hour_utc).mean()
    assert rh_prof.idxmin() == pytest.approx(prof.idxmax(), abs=3)


def test_hourly_and_climate_override():
    clim = Climate.from_latitude(10.0, 0.0, precip_mm_yr=0.0)
    ds = generate_site(latitude=10.0, igbp="SAV", years=0.5, time_step_s=3600, climate=clim)
    assert ds.attrs["time_step_s"] == 3600
    assert np.all(np.diff(ds.time.values) == np.timedelta64(3600, "s"))
    assert float(ds["Rainf"].sum()) == 0.0
    assert "forcing=" in ds.attrs["filled"]


def test_local_standard_time_stamps(sites):
    """Stamps are local standard time: CN-Cng (UTC+8) has its SWdown peak near local noon, not 04 UTC."""
    ds = sites[1]
    assert ds.attrs["utc_offset_h"] == 8.0
    hour = pd.DatetimeIndex(ds.time.values).hour
    peak = pd.Series(ds["SWdown"].values).groupby(hour).mean().idxmax()
    assert 11 <= peak <= 13


def test_twins_resemble_real_sites(sites, real_data_dir):
    """Annual means of the synthetic twins are close to the real sites' (temperature, radiation)."""
    from data_helpers import real_sites

    real = real_sites(real_data_dir)
    for syn in sites:
        obs = real[syn.attrs["site"]]
        assert abs(float(syn["Tair"].mean() - obs["Tair"].mean())) < 2.0, syn.attrs["site"]
        for v in ("SWdown", "LWdown"):
            assert float(syn[v].mean()) == pytest.approx(float(obs[v].mean()), rel=0.12), (syn.attrs["site"], v)


@pytest.mark.parametrize("lon,offset", [(-97.6, None), (-179.0, -12.0), (179.0, 12.0), (-60.0, 0.0)])
def test_any_longitude_and_offset(lon, offset):
    """Western, eastern and dateline longitudes: daylight where the sun is up, night where it is down."""
    ds = generate_site(latitude=35.0, longitude=lon, years=0.1, utc_offset_h=offset, seed=2)
    utc = ds.time.values - np.timedelta64(int(ds.attrs["utc_offset_h"] * 3600), "s")
    toa = solar.toa_step_mean(utc, 1800, 35.0, lon)
    sw = ds["SWdown"].values
    assert np.all(sw[toa == 0] == 0) and np.corrcoef(sw, toa)[0, 1] > 0.8
    hour_utc = pd.DatetimeIndex(utc).hour + 0.5
    tmax_hour = pd.Series(ds["Tair"].values).groupby(hour_utc).mean().idxmax()
    solar_hour = (tmax_hour + lon / 15.0) % 24
    assert 12 <= solar_hour <= 17
