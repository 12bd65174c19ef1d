"""Sites of different lengths and calendars in one land-model call: grouping, padding, same results as alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.ils.batching import batch_groups, batch_key, pad_group, pad_record


def test_pad_record_repeats_the_site_and_runs_the_clock_on():
    ds = site_twin("DK-Fou", years=0.05, seed=0, start="2005-03-01")
    n = ds.sizes["time"]
    out = pad_record(ds, n + 100)
    t = out["time"].values
    assert out.sizes["time"] == n + 100 and out.attrs["padded_steps"] == 100
    assert np.all(np.diff(t) == np.timedelta64(1800, "s")) and t[0] == ds["time"].values[0]
    np.testing.assert_array_equal(out["Tair"].values[:n], ds["Tair"].values)
    np.testing.assert_array_equal(out["Tair"].values[n:], ds["Tair"].values[:100])  # the site's own first steps
    assert pad_record(ds, n) is ds


def test_groups_share_step_time_of_day_and_spin_up_window():
    year = site_twin("DK-Fou", years=1, seed=0, start="2005-01-01")
    leap = site_twin("CN-Cng", years=1.01, seed=0, start="2008-01-01")
    two = site_twin("ES-ES2", years=2, seed=0, start="2005-01-01")
    short = site_twin("ZA-Kru", years=0.2, seed=0)
    shorter = site_twin("ID-Pag", years=0.1, seed=0)
    hourly = site_twin("FI-Hyy", years=1, seed=0, time_step_s=3600)
    noon = year.isel(time=slice(24, None))  # starts at 12:00
    sites = [year, leap, two, short, shorter, hourly, noon]
    assert batch_key(year)[2] == batch_key(two)[2] == 17520 and batch_key(short)[2] == short.sizes["time"]
    # records of a year or more share a call; shorter ones spin up over their whole record, so only equal ones do;
    # other step lengths and start times run apart
    assert batch_groups(sites) == [[0, 1, 2], [3], [4], [5], [6]]
    assert batch_groups(sites, max_pad_days=100) == [[0, 1], [2], [3], [4], [5], [6]]
    assert [d.sizes["time"] for d in pad_group([year, leap, two])] == [two.sizes["time"]] * 3


@pytest.mark.full
def test_embedded_model_padded_batch_equals_each_site_alone():
    """The embedded model with spin-up: a 1-year and a 1.15-year site (other years, climates) in one padded
    call give each site's fluxes as alone (float64, every day)."""
    from mdpl.config import LsmConfig
    from mdpl.ils import EmbeddedLSM
    from mdpl.ils.parameters import PARAMETER_SPACE as SPACE

    a = site_twin("DK-Fou", years=1, seed=2, time_step_s=3600, start="2005-01-01")
    b = site_twin("ID-Pag", years=1.15, seed=3, time_step_s=3600, start="2002-01-01")
    m = EmbeddedLSM(LsmConfig(spinup_max_years=3, spinup_tolerance=1e-3, dtype="float64", compile="off"),
                    device="cpu")
    p = np.stack([SPACE.defaults("CRO"), SPACE.defaults("EBF")])
    together = m.simulate(pad_group([a, b]), p[:, None, :], daily=True)
    for i, ds in enumerate([a, b]):
        alone = m.simulate(ds, p[i], daily=True)
        n = alone["Qle"].shape[1]
        for flux in ("Qle", "Qh", "NEE"):
            torch.testing.assert_close(together[flux][i, :n], alone[flux][0], rtol=1e-9, atol=1e-9)
