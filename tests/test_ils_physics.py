"""Physics directions of the embedded model, each a controlled experiment on the same forcing."""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE

WET, DRY = 0.30, 0.17  # m3 m-3: near field capacity / near the wilting point (0.155)


@pytest.fixture(scope="module")
def runs():
    ds = site_twin("DK-Fou", years=4 / 365.25, start="2005-07-01")
    base = SPACE.defaults("CRO")
    sets = {"base": base}
    for name, value in (("vcmax25", 120.0), ("albedo_canopy", 0.25), ("resp_base", 6.0), ("q10", 3.0)):
        p = base.copy()
        p[SPACE.index(name)] = value
        sets[name] = p
    m = EmbeddedLSM(device="cpu")
    p = np.stack(list(sets.values()))
    wet = m.simulate(ds, p, spinup=False, initial_theta=WET)
    dry = m.simulate(ds, p[:1], spinup=False, initial_theta=DRY)
    day = torch.as_tensor(ds["SWdown"].values > 200)
    means = {k: {f: wet[f][i].mean().item() for f in ("GPP", "Rnet", "Qh", "Qle", "TVeg", "NEE", "Reco")}
             for i, k in enumerate(sets)}
    means["dry"] = {f: dry[f][0].mean().item() for f in ("GPP", "Rnet", "Qh", "Qle", "TVeg", "NEE", "Reco")}
    return means, wet, dry, day


def test_more_vcmax_more_gpp(runs):
    m = runs[0]
    assert m["vcmax25"]["GPP"] > 1.1 * m["base"]["GPP"]
    assert m["vcmax25"]["NEE"] < m["base"]["NEE"]


def test_dry_root_zone_less_transpiration_more_sensible_heat(runs):
    m, wet, dry, day = runs
    assert m["dry"]["TVeg"] < 0.5 * m["base"]["TVeg"]
    assert m["dry"]["Qh"] > m["base"]["Qh"] + 10.0
    assert m["dry"]["GPP"] < m["base"]["GPP"]
    assert dry["SoilWaterStress"][0].max() < wet["SoilWaterStress"][0].min()


def test_higher_albedo_less_net_radiation(runs):
    m, wet, _, day = runs
    assert m["albedo_canopy"]["Rnet"] < m["base"]["Rnet"] - 5.0
    assert torch.all(wet["Rnet"][2, day] < wet["Rnet"][0, day])


def test_respiration_parameters_raise_respiration(runs):
    m = runs[0]
    assert m["resp_base"]["Reco"] > 1.5 * m["base"]["Reco"]
    # summer soil (> 10 degC): a larger Q10 means more respiration
    assert m["q10"]["Reco"] > m["base"]["Reco"]


def test_roughness_couples_the_surface_to_the_air():
    ds = site_twin("DK-Fou", years=2 / 365.25, start="2005-07-01")
    base = SPACE.defaults("CRO")
    smooth, rough = base.copy(), base.copy()
    smooth[SPACE.index("z0_frac")], rough[SPACE.index("z0_frac")] = 0.03, 0.2
    r = EmbeddedLSM(device="cpu").simulate(ds, np.stack([smooth, rough]), spinup=False)
    day = torch.as_tensor(ds["SWdown"].values > 400)
    ta = torch.as_tensor(ds["Tair"].values, dtype=torch.float32)
    # a rougher surface runs cooler by day (stronger turbulent exchange)
    assert (r["Tsurf"][1, day] - ta[day]).mean() < (r["Tsurf"][0, day] - ta[day]).mean()
