"""Conservation laws of the embedded model, checked from its outputs.

Energy: the ground heat flux Qg is the conductive flux from the surface to the
first soil node (computed from the soil temperature profile), so the surface
balance Rnet - Qh - Qle - Qg is *not* zero by construction: it is what the
Newton iterations leave. The column's heat content change is recomputed here
from the reported soil temperatures, water and ice contents (sensible heat by the
heat capacities of :func:`mdpl.ils.soil_thermal.layer_properties`, the latent
heat of the soil's ice store, -L_f x ice, and the latent heat of the snow that
melted) and must equal the energy that entered at the surface, Rnet - Qh - Qle,
minus the bottom flux (zero: an insulated column base). The checks are shown
to fail when a term is dropped (Qle, the latent heat of melt, or that of the
soil ice) and when the surface solve is cut to one Newton iteration.

Water: P - E - runoff - drainage equals the storage change (soil water liquid
and frozen, snow, canopy) in float64 to 1e-6 mm.
"""

import numpy as np
import pytest
import torch

from mdpl.config import LsmConfig
from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils import constants as C
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.soil_thermal import layer_properties

DZ_M = torch.tensor(C.SOIL_DZ_M, dtype=torch.float64)
#: bound on the mean column energy imbalance (W m-2) and on the water balance (kg m-2)
ENERGY_TOL = 0.01
WATER_TOL = 1e-6


def column_energy_terms(res) -> dict[str, torch.Tensor]:
    """Per column (batch, steps 1..N-1) terms of the heat budget of the soil + snow column, W m-2.

    ``storage``: sum over layers of C_l(theta, ice at step start) x (T_l end - T_l start) / dt;
    ``ice``: change of the latent heat of the soil ice, -L_f x (ice end - ice start) / dt;
    ``melt``: latent heat taken by snowmelt, L_f x Qsm; ``surface``: Rnet - Qh - Qle; ``qg``: Qg.
    """
    water_mm = res["SoilMoist"].double()
    ice_mm = water_mm * res["SMFrozFrac"].double()
    theta, ice = water_mm / (DZ_M * C.RHO_WATER), ice_mm / (DZ_M * C.RHO_WATER)
    temp = res["SoilTemp"].double()
    b, n, nl = theta.shape
    porosity = torch.tensor(res.diagnostics["soil_theta_sat"], dtype=torch.float64).repeat_interleave(n)[:, None]
    heat_cap, _ = layer_properties(theta.reshape(-1, nl), ice.reshape(-1, nl), DZ_M, porosity)
    heat_cap = heat_cap.reshape(b, n, nl)
    storage = (heat_cap[:, :-1] * (temp[:, 1:] - temp[:, :-1])).sum(-1) / res.time_step_s
    ice_heat = -C.LATENT_FUSION * (ice_mm[:, 1:] - ice_mm[:, :-1]).sum(-1) / res.time_step_s
    f = {k: res[k].double()[:, 1:] for k in ("Rnet", "Qh", "Qle", "Qg", "Qsm")}
    return dict(storage=storage, ice=ice_heat, melt=C.LATENT_FUSION * f["Qsm"], surface=f["Rnet"] - f["Qh"] - f["Qle"],
                qg=f["Qg"])


def energy_imbalance(terms: dict[str, torch.Tensor], drop: str | None = None) -> torch.Tensor:
    """Mean over the run of (energy in at the surface - bottom flux - heat content change), W m-2 per column.

    ``drop``: leave one term out ("Qle", "melt" or "ice") to see the check fail.
    """
    surface = terms["surface"]
    if drop == "Qle":
        surface = terms["surface"] + terms["qle"]
    melt = 0.0 if drop == "melt" else terms["melt"]
    ice = 0.0 if drop == "ice" else terms["ice"]
    bottom = 0.0  # insulated base (zero-flux lower boundary of soil_thermal.step_temperature)
    return (surface - bottom - terms["storage"] - ice - melt).mean(-1)


def soil_step_imbalance(terms: dict[str, torch.Tensor], drop: str | None = None) -> torch.Tensor:
    """Largest |Qg - heat content change of the soil and snowmelt| of any step (W m-2), per column.

    Conduction and phase change conserve energy step by step, so this is rounding; ``drop="ice"``
    leaves out the latent heat of the soil ice (a freeze or thaw then shows in the step it happens).
    """
    ice = 0.0 if drop == "ice" else terms["ice"]
    return (terms["qg"] - terms["storage"] - ice - terms["melt"]).abs().amax(-1)


def _check_budgets(res, what: str):
    terms = column_energy_terms(res)
    terms["qle"] = res["Qle"].double()[:, 1:]
    column = energy_imbalance(terms)
    conduction = (terms["qg"] - terms["storage"] - terms["ice"] - terms["melt"]).mean(-1)  # the soil alone
    surface = (terms["surface"] - terms["qg"]).abs().mean(-1)  # the skin stores no heat
    per_step = soil_step_imbalance(terms)
    water = res.water_balance_mm().abs()
    print(f"{what}: column energy imbalance {column.abs().max():.2e} W m-2 (soil alone {conduction.abs().max():.2e}, "
          f"surface mean |Rnet-Qh-Qle-Qg| {surface.max():.2e}); water {water.max():.2e} mm")
    assert column.abs().max() <= ENERGY_TOL, (what, column)
    assert conduction.abs().max() <= ENERGY_TOL, (what, conduction)
    assert per_step.max() <= 1e-6, (what, per_step)
    assert surface.max() <= ENERGY_TOL, (what, surface)
    torch.testing.assert_close(res["energy_closure"].double(), res["energy_residual"].double())
    assert water.max() <= WATER_TOL, (what, water)
    # stores never go negative; soil stays between residual and saturation
    assert res["SWE"].min() > -1e-9 and res["CanopInt"].min() > -1e-9
    theta = res["SoilMoist"] / (DZ_M * C.RHO_WATER)
    porosity = torch.tensor(res.diagnostics["soil_theta_sat"], dtype=torch.float64)[:, None, None]
    assert theta.min() > C.THETA_RES - 1e-9 and (theta <= porosity + 1e-9).all()
    return terms


@pytest.fixture(scope="module")
def model64():
    return EmbeddedLSM(device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def snowy_and_wet():
    # a snowy, thawing temperate winter and a wet tropical forest, in one batch, with 3 parameter sets
    sites = [site_twin("DK-Fou", years=30 / 365.25, start="2005-01-21"),
             site_twin("ID-Pag", years=30 / 365.25, start="2005-01-21")]
    n = min(d.sizes["time"] for d in sites)
    return [d.isel(time=slice(0, n)) for d in sites]


def test_synthetic_snow_rain_and_drought_conserve_energy_and_water(model64, snowy_and_wet):
    rng = np.random.default_rng(1)
    sets = np.concatenate([SPACE.defaults("GRA")[None], SPACE.from_unit(rng.random((2, SPACE.n)))])
    res = model64.simulate(snowy_and_wet, sets, spinup=False)
    terms = _check_budgets(res, "synthetic")
    # the run exercised every store: snow built up and melted, the canopy intercepted, the soil drained
    assert res["SWE"][:3].max() > 1.0 and res["Qsm"][:3].sum() > 0
    assert res["ECanop"][3:].max() > 0 and res["Qsb"].min() > 0
    assert res["Qs"].max() > 0
    # the soil froze (and the water budget counted its ice as soil water)
    assert res["SMFrozFrac"][:3, :, 0].max() > 0.1 and res["SMFrozFrac"][3:].max() == 0
    # the check can fail: leaving out latent heat, the heat that melted snow or the latent heat of the
    # soil ice breaks the budget
    assert energy_imbalance(terms, drop="Qle").abs().max() > 100 * ENERGY_TOL
    assert energy_imbalance(terms, drop="melt")[:3].abs().max() > ENERGY_TOL
    assert energy_imbalance(terms, drop="ice")[:3].abs().max() > 100 * ENERGY_TOL
    assert soil_step_imbalance(terms, drop="ice")[:3].min() > 10.0


def test_one_newton_iteration_leaves_the_surface_unbalanced(snowy_and_wet):
    """The surface balance is solved, not defined: with a single Newton iteration it no longer closes."""
    short = [d.isel(time=slice(0, 5 * 48)) for d in snowy_and_wet]
    res = EmbeddedLSM(LsmConfig(newton_iterations=1), device="cpu", dtype=torch.float64).simulate(
        short, SPACE.defaults("GRA"), spinup=False)
    assert res["energy_residual"].abs().mean() > ENERGY_TOL


def test_float32_default_closes_the_surface_to_half_a_watt():
    m = EmbeddedLSM(device="cpu")
    ds = site_twin("ZA-Kru", years=10 / 365.25, start="2005-01-01")
    res = m.simulate(ds, None, spinup=False)
    assert res["energy_residual"].abs().max() < 0.5
    assert res.diagnostics["max_abs_energy_residual_w_m2"] < 0.5
    assert res.water_balance_mm().abs().max() < 0.05  # float32 rounding over 480 steps


@pytest.mark.realdata
def test_real_snowmelt_season_conserves_energy_and_water(model64, real_data_dir):
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=["FI-Hyy"])[0].sel(time=slice("2001-03-15", "2001-04-14"))  # snow, then melt
    res = model64.simulate(ds, None, spinup=False)
    terms = _check_budgets(res, "FI-Hyy snowmelt")
    assert res["Qsm"].sum() * res.time_step_s > 2.0  # kg m-2 of snow melted in the window
    assert energy_imbalance(terms, drop="melt").abs().max() > ENERGY_TOL


@pytest.mark.realdata
@pytest.mark.full
@pytest.mark.parametrize("site", ["FI-Hyy", "DK-Fou"])
def test_real_year_conserves_energy_and_water(model64, real_data_dir, site):
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=[site])[0]
    ds = ds.isel(time=slice(0, 365 * 48))
    res = model64.simulate(ds, None, spinup=False)
    terms = _check_budgets(res, f"{site} year")
    assert energy_imbalance(terms, drop="melt").abs().max() > ENERGY_TOL  # both sites have snow
    if site == "FI-Hyy":  # a long frozen winter: without the latent heat of the soil ice the budget fails
        assert res["SMFrozFrac"][0, :, 0].max() > 0.3
        assert energy_imbalance(terms, drop="ice").abs().max() > ENERGY_TOL
        assert soil_step_imbalance(terms, drop="ice").max() > 10.0
