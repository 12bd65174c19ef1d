"""Conservation laws of the embedded model: surface energy closure at every step, column water over a run."""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE

DZ_MM = torch.tensor([100.0, 300.0, 800.0, 1800.0], dtype=torch.float64)


def _check(res, what: str):
    closure = res["energy_closure"].abs().max().item()
    residual = res["energy_residual"].abs().max().item()
    water = res.water_balance_mm().abs().max().item()
    print(f"{what}: max |Rnet-Qg-Qh-Qle| = {closure:.2e} W m-2, max Newton residual = {residual:.2e} W m-2, "
          f"max |water balance| = {water:.2e} mm")
    assert closure < 0.5 and residual < 0.5, what
    assert water < 1e-3, what
    # stores never go negative; soil stays between residual and saturation
    assert res["SWE"].min() > -1e-9 and res["CanopInt"].min() > -1e-9
    theta = res["SoilMoist"] / DZ_MM
    assert theta.min() > 0.02 - 1e-9 and theta.max() < 0.451 + 1e-9
    return closure, residual, water


@pytest.fixture(scope="module")
def model64():
    return EmbeddedLSM(device="cpu", dtype=torch.float64)


def test_synthetic_snow_rain_and_drought_close_energy_and_water(model64):
    # a snowy, thawing temperate winter and a wet tropical forest, in one batch, with 3 parameter sets
    sites = [site_twin("DK-Fou", years=30 / 365.25, start="2005-01-21"),
             site_twin("ID-Pag", years=30 / 365.25, start="2005-01-21")]
    n = min(d.sizes["time"] for d in sites)
    sites = [d.isel(time=slice(0, n)) for d in sites]
    rng = np.random.default_rng(1)
    sets = np.concatenate([SPACE.defaults("GRA")[None], SPACE.from_unit(rng.random((2, SPACE.n)))])
    res = model64.simulate(sites, sets, spinup=False)
    _check(res, "synthetic")
    # the run exercised every store: snow built up and melted, the canopy intercepted, the soil drained
    assert res["SWE"][:3].max() > 1.0 and res["Qsm"][:3].sum() > 0
    assert res["ECanop"][3:].max() > 0 and res["Qsb"].min() > 0
    assert res["Qs"].max() > 0


def test_float32_default_closes_energy_to_half_a_watt():
    m = EmbeddedLSM(device="cpu")
    ds = site_twin("ZA-Kru", years=10 / 365.25, start="2005-01-01")
    res = m.simulate(ds, None, spinup=False)
    assert res["energy_residual"].abs().max() < 0.5
    assert res["energy_closure"].abs().max() < 0.5
    assert res.diagnostics["max_abs_energy_residual_w_m2"] < 0.5


@pytest.mark.realdata
def test_real_site_closes_energy_and_water(model64, real_data_dir):
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=["DK-Fou"])[0].isel(time=slice(0, 20 * 48))  # January: frost, rain
    res = model64.simulate(ds, None, spinup=False)
    _check(res, "DK-Fou January")
