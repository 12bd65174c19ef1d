"""Snow albedo ageing (:mod:`mdpl.ils.snow_albedo`): falls with snow age, faster near melting, reset by snowfall."""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils import constants as C
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.snow_albedo import age_snow_albedo, refresh_snow_albedo

DAY = 86400.0
NEW, OLD = C.SNOW_ALBEDO_NEW, C.SNOW_ALBEDO_OLD


def _age(days: float, t_k: float, dt=DAY / 10) -> float:
    a = torch.tensor([NEW], dtype=torch.float64)
    for _ in range(int(days * DAY / dt)):
        a = age_snow_albedo(a, torch.tensor([t_k], dtype=torch.float64), dt)
    return float(a)


def test_albedo_falls_with_age_towards_old_snow_faster_near_melting():
    warm = [_age(d, C.T_FREEZE) for d in (1, 5, 20, 200)]
    cold = [_age(d, C.T_FREEZE - 30.0) for d in (1, 5, 20, 200)]
    assert all(np.diff(warm) < 0) and all(np.diff(cold) < 0)
    assert all(w < c for w, c in zip(warm, cold))  # melting snow ages faster than cold snow
    assert all(OLD < v < NEW for v in warm + cold)
    # MATSIRO's rates: half way to old snow (A = 1) after 1e6 s / 1.3 = 8.9 days at 0 degC
    half = NEW + 0.5 * (OLD - NEW)
    assert _age(8.5, C.T_FREEZE) > half > _age(9.3, C.T_FREEZE)
    # a skin warmer than 0 degC ages the snow as melting snow, not faster
    assert _age(5, C.T_FREEZE + 10.0) == pytest.approx(warm[1])


def test_snowfall_resets_towards_fresh_snow_in_proportion_to_its_amount():
    old = torch.tensor([0.5, 0.5, 0.5, 0.5], dtype=torch.float64)
    fall = torch.tensor([0.0, 5.0, 10.0, 30.0], dtype=torch.float64)
    lying = torch.full_like(old, 50.0)
    out = refresh_snow_albedo(old, fall, lying)
    torch.testing.assert_close(out, torch.tensor([0.5, 0.5 + 0.5 * (NEW - 0.5), NEW, NEW], dtype=torch.float64))
    # on bare ground, whatever falls is fresh snow
    assert float(refresh_snow_albedo(old[:1], fall[1:2], torch.zeros(1, dtype=torch.float64))) == NEW


def test_model_snow_ages_between_snowfalls_and_fresh_snow_absorbs_less():
    """Two columns under one cold, dry 12 days on 100 mm of snow; the second gets 10 mm more on day 6."""
    ds = site_twin("DK-Fou", years=12 / 365.25, start="2005-02-01")
    steps = 48
    ds["Tair"][:] = C.T_FREEZE - 8.0
    ds["Rainf"][:] = 0.0
    ds["Snowf"][:] = 0.0
    ds["Snowf"][:4] = 25.0 / 1800.0  # 100 mm in the first two hours
    fresh = ds.copy(deep=True)
    fresh["Snowf"][6 * steps] = 10.0 / 1800.0  # 10 mm at the start of day 6
    m = EmbeddedLSM(device="cpu", dtype=torch.float64)
    res = m.simulate([ds, fresh], SPACE.defaults("CRO"), spinup=False)
    alb = res["SAlbedo"]
    assert float(res["SWE"][:, -1].min()) > 80.0  # the snow stayed
    old_run = alb[0, 4:]
    assert bool((old_run[1:] <= old_run[:-1]).all()) and float(old_run[-1]) < NEW - 0.1
    jump = 6 * steps
    assert float(alb[1, jump]) == pytest.approx(NEW, abs=1e-3) and float(alb[0, jump]) < NEW - 0.05
    # after the fresh snow, the brighter column absorbs less: lower daytime net radiation
    day = torch.as_tensor(ds["SWdown"].values > 100)
    day[: jump] = False
    assert float((res["Rnet"][0, day] - res["Rnet"][1, day]).mean()) > 2.0
