"""Daily and monthly aggregation: known answers on constructed series."""

from __future__ import annotations

import numpy as np
import pytest

from mdpl.data.aggregate import daily, monthly
from mdpl.data.schema import assemble, FORCING_VARS
from mdpl.errors import ConfigError


def _constructed(step=1800, days=62, start="2005-01-01"):
    per_day = 86400 // step
    n = days * per_day
    times = np.datetime64(start + "T00:00", "ns") + np.arange(n) * np.timedelta64(step, "s")
    forcing = {v: np.zeros(n) for v in FORCING_VARS}
    step_in_day = np.arange(n) % per_day
    day = np.arange(n) // per_day
    forcing["Tair"] = 270.0 + day + step_in_day / per_day  # day mean = 270 + day + (per_day-1)/(2 per_day)
    forcing["Rainf"] = np.where(step_in_day == 0, 1e-3, 0.0)  # one wet step a day
    qle = 10.0 * day + 0.0  # constant within a day
    measured = np.ones(n, dtype=bool)
    # day 1: 80 % measured (kept); day 2: 70 % (dropped); day 3: all steps NaN
    measured[(day == 1) & (step_in_day < round(0.2 * per_day))] = False
    measured[(day == 2) & (step_in_day < round(0.3 * per_day))] = False
    qle[day == 3] = np.nan
    measured[day == 3] = False
    attrs = {"site": "XX-Tst", "time_step_s": step}
    return assemble(times, forcing, attrs, {"Qle": qle}, {"Qle": measured})


@pytest.mark.parametrize("step", [1800, 3600])
def test_daily_known_answers(step):
    ds = _constructed(step)
    per_day = 86400 // step
    d = daily(ds)
    assert d.sizes["time"] == 62 and d.attrs["time_step_s"] == 86400 and d.attrs["site"] == "XX-Tst"
    np.testing.assert_allclose(d["Tair"].values[:3], 270 + np.arange(3) + (per_day - 1) / (2 * per_day))
    np.testing.assert_allclose(d["Rainf"].values, 1e-3 / per_day)  # mean rate
    q, m = d["Qle"].values, d["Qle_measured"].values
    assert q[0] == 0.0 and m[0]
    assert q[1] == 10.0 and m[1]  # 80 % measured >= 75 %
    assert np.isnan(q[2]) and not m[2]  # 70 % < 75 %
    assert np.isnan(q[3]) and not m[3]
    assert d["Qle_measured_fraction"].values[1] == pytest.approx(0.8, abs=1 / per_day)
    # fluxes the input lacks stay all-NaN and unmeasured
    assert d["Qh"].isnull().all() and not d["Qh_measured"].any()


def test_threshold_is_configurable():
    ds = _constructed()
    assert daily(ds, min_measured_fraction=0.6)["Qle_measured"].values[2]
    assert not daily(ds, min_measured_fraction=0.85)["Qle_measured"].values[1]
    with pytest.raises(ConfigError):
        daily(ds, min_measured_fraction=1.5)


def test_partial_day_counts_missing_steps_as_unmeasured():
    ds = _constructed().isel(time=slice(0, 48 + 30))  # day 1 has only 30 of 48 steps
    d = daily(ds)
    assert d.sizes["time"] == 2 and not d["Qle_measured"].values[1]


def test_monthly_known_answers():
    ds = _constructed(days=59)  # January + February 2005
    m = monthly(ds)
    assert [str(t)[:7] for t in m.time.values] == ["2005-01", "2005-02"]
    assert m.attrs["time_step"] == "month"
    # January: days 0..30, days 2 and 3 dropped -> mean of 10*day over the other 29 days
    jan_days = [d for d in range(31) if d not in (2, 3)]
    assert m["Qle"].values[0] == pytest.approx(10 * np.mean(jan_days))
    assert m["Qle"].values[1] == pytest.approx(10 * np.mean(np.arange(31, 59)))
    assert m["Qle_measured"].all()
    # a month with fewer than half its days kept is dropped
    ds2 = _constructed(days=59)
    ds2["Qle_measured"][: 20 * 48] = False
    assert not monthly(ds2)["Qle_measured"].values[0]
    np.testing.assert_allclose(m["Rainf"].values, 1e-3 / 48)


def test_real_site_daily(real_data_dir):
    from data_helpers import real_sites

    ds = real_sites(real_data_dir)["DK-Fou"]
    d = daily(ds)
    assert d.sizes["time"] == 365
    frac = ds["Qle_measured"].values.reshape(365, 48).mean(axis=1)
    np.testing.assert_array_equal(d["Qle_measured"].values, frac >= 0.75)
    np.testing.assert_allclose(d["Tair"].values, ds["Tair"].values.reshape(365, 48).mean(axis=1))
    m = monthly(ds)
    assert m.sizes["time"] == 12 and 250 < float(m["Tair"].min()) < float(m["Tair"].max()) < 300
