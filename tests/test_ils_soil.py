"""Soil texture per site and the Cosby et al. (1984) pedotransfer functions."""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.errors import ModelError
from mdpl.ils import EmbeddedLSM
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.soil_texture import LOAM, cosby_hydraulics, site_texture


def _cosby(sand, clay, factor=1.0):
    t = lambda v: torch.tensor([v], dtype=torch.float64)  # noqa: E731
    return {k: float(v) for k, v in cosby_hydraulics(t(sand), t(clay), t(factor))._asdict().items()}


def test_cosby_regressions_give_the_published_textures_their_order():
    sand, loam, clay = _cosby(0.92, 0.03), _cosby(*LOAM), _cosby(0.22, 0.58)
    # Cosby et al. (1984) Table 4 at a loam: b 6.1, psi_sat -0.24 m, porosity 0.438, Ksat 4.4e-6 m s-1
    assert loam["b"] == pytest.approx(3.10 + 15.7 * 0.20 - 0.3 * 0.42)
    assert loam["theta_sat"] == pytest.approx(0.505 - 0.142 * 0.42 - 0.037 * 0.20)
    assert loam["ksat_m_s"] == pytest.approx(0.0254 / 3600 * 10 ** (-0.60 + 1.26 * 0.42 - 0.64 * 0.20))
    assert loam["psi_sat_m"] == pytest.approx(-0.01 * 10 ** (1.54 - 0.95 * 0.42 + 0.63 * 0.38))
    # sand drains fast and holds little; clay the reverse
    assert sand["ksat_m_s"] > 10 * clay["ksat_m_s"] and sand["b"] < loam["b"] < clay["b"]
    assert sand["theta_fc"] < loam["theta_fc"] < clay["theta_fc"]
    for s in (sand, loam, clay):
        assert 0 < s["theta_wilt"] < s["theta_fc"] < s["theta_sat"] < 0.6
    assert _cosby(*LOAM, factor=3.0)["ksat_m_s"] == pytest.approx(3 * loam["ksat_m_s"])


def test_site_texture_from_attributes_else_igbp():
    assert site_texture("s", "ENF", {}) == LOAM
    assert site_texture("s", "OSH", {})[0] > 0.6  # arid shrubland: sandy loam
    assert site_texture("s", "GRA", {"soil_sand_fraction": 0.1}) == (0.1, LOAM[1])  # clay from the default
    with pytest.raises(ModelError, match="site s: attribute soil_clay_fraction=1.4"):
        site_texture("s", "GRA", {"soil_clay_fraction": 1.4})
    with pytest.raises(ModelError, match="site s: sand .* exceed 1"):
        site_texture("s", "GRA", {"soil_sand_fraction": 0.7, "soil_clay_fraction": 0.5})


def test_from_the_same_water_content_sand_drains_more_than_clay():
    wet = site_twin("DK-Fou", years=20 / 365.25, start="2005-10-01")
    assert wet["Rainf"].values.sum() * 1800 > 15  # an autumn with rain (kg m-2)
    sandy, clayey = wet.copy(), wet.copy()
    sandy.attrs = dict(wet.attrs, site="sandy", soil_sand_fraction=0.9, soil_clay_fraction=0.05)
    clayey.attrs = dict(wet.attrs, site="clayey", soil_sand_fraction=0.2, soil_clay_fraction=0.5)
    m = EmbeddedLSM(device="cpu", dtype=torch.float64)
    p = torch.tensor(SPACE.defaults("CRO"), dtype=torch.float64, requires_grad=True)
    # from the same water content (wet for the sand, moist for the clay) the sand drains far more
    r = m.simulate([sandy, clayey], p, spinup=False, initial_theta=0.33)
    drained = r["Qsb"].sum(1) * 1800
    assert drained[0] > 2 * drained[1], drained
    assert r["SoilMoist"][0, -1].sum() < r["SoilMoist"][1, -1].sum()
    assert r.water_balance_mm().abs().max() < 1e-6
    # batch == one by one, and the calibrated ksat_factor moves drainage
    one = m.simulate(sandy, p.detach(), spinup=False, initial_theta=0.33)
    torch.testing.assert_close(one["Qsb"][0], r["Qsb"][0].detach())
    r["Qsb"].sum().backward()
    g = p.grad[SPACE.index("ksat_factor")]
    assert torch.isfinite(p.grad).all() and g > 0  # faster conduction, more drainage


@pytest.mark.realdata
def test_changling_site_file_texture_reaches_the_model(real_data_dir):
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=["CN-Cng"])[0]
    assert 0.05 < ds.attrs["soil_sand_fraction"] < 0.3  # silty soil of the Songnen plain (site file)
    m = EmbeddedLSM(device="cpu")
    r = m.simulate(ds.isel(time=slice(0, 48)), None, spinup=False)
    loam = _cosby(*LOAM)["theta_sat"]
    expected = _cosby(ds.attrs["soil_sand_fraction"], LOAM[1])["theta_sat"]
    assert r.diagnostics["soil_theta_sat"][0] == pytest.approx(expected, rel=1e-5) and expected > loam
