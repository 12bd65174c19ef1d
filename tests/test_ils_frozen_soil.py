"""Frozen soil (:mod:`mdpl.ils.freezing`): latent heat of fusion in the soil layers, unfrozen water below 0 degC,
ice that impedes drainage; each a controlled experiment."""

import numpy as np
import pytest
import torch

from mdpl.config import LsmConfig
from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils import constants as C
from mdpl.ils.freezing import ice_impedance, max_liquid, phase_change
from mdpl.ils.hydrology import SoilGrid, soil_step
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.soil_texture import cosby_hydraulics
from mdpl.ils.soil_thermal import layer_properties

F64 = dict(dtype=torch.float64)
DZ_MM = torch.tensor(C.SOIL_DZ_M, **F64) * C.RHO_WATER
LOAM = cosby_hydraulics(torch.tensor([0.42], **F64), torch.tensor([0.20], **F64), torch.tensor([1.0], **F64))


def test_unfrozen_water_is_the_freezing_point_depression_of_the_matric_potential():
    t = C.T_FREEZE - torch.tensor([[0.0, 0.5, 1.0, 5.0, 20.0]], **F64)
    liq = max_liquid(t, LOAM.theta_sat, LOAM.psi_sat_m, LOAM.b)
    assert float(liq[0, 0]) == pytest.approx(float(LOAM.theta_sat))  # at 0 degC nothing need freeze
    assert bool((liq[0, 1:] < liq[0, :-1]).all())
    # Clapp-Hornberger suction of the water left liquid = the Clapeyron depression L_f dT / (g T)
    psi = LOAM.psi_sat_m.abs() * (liq / LOAM.theta_sat) ** (-LOAM.b)
    torch.testing.assert_close(psi[0, 1:], C.LATENT_FUSION * (C.T_FREEZE - t[0, 1:]) / (C.GRAVITY * t[0, 1:]))
    assert 0.1 < float(liq[0, 2]) < 0.2  # a loam keeps about a third of its pores liquid at -1 degC


def test_phase_change_conserves_energy_and_stops_at_zero_degrees():
    g = torch.Generator().manual_seed(0)
    n = 64
    t_star = C.T_FREEZE + 6.0 * (torch.rand(n, 4, generator=g, **F64) - 0.5)
    theta = 0.1 + 0.3 * torch.rand(n, 4, generator=g, **F64)
    ice = theta * torch.rand(n, 4, generator=g, **F64) * (torch.rand(n, 4, generator=g, **F64) > 0.5)
    heat_cap, _ = layer_properties(theta, ice, torch.tensor(C.SOIL_DZ_M, **F64), LOAM.theta_sat)
    t, ice2, frozen = phase_change(t_star, heat_cap, theta, ice, DZ_MM, LOAM.theta_sat, LOAM.psi_sat_m, LOAM.b)
    # sensible heat gained = latent heat released by the ice made
    torch.testing.assert_close(heat_cap * (t - t_star), C.LATENT_FUSION * frozen, rtol=0, atol=1e-6)
    torch.testing.assert_close((ice2 - ice) * DZ_MM, frozen)
    assert bool((ice2 >= -1e-15).all()) and bool((ice2 <= theta + 1e-15).all())
    # never past 0 degC: freezing warms towards it, thawing cools towards it
    assert bool((t[t_star < C.T_FREEZE] <= C.T_FREEZE + 1e-9).all())
    assert bool((t[t_star > C.T_FREEZE] >= C.T_FREEZE - 1e-9).all())
    # ice melts only above 0 degC and forms only below; what stays liquid is at least the unfrozen water
    assert bool((frozen[t_star > C.T_FREEZE] <= 0).all()) and bool((frozen[t_star < C.T_FREEZE] >= 0).all())
    made = frozen > 0
    liq_max = max_liquid(t_star, LOAM.theta_sat, LOAM.psi_sat_m, LOAM.b)
    assert bool(((theta - ice2)[made] >= liq_max[made] - 1e-12).all())
    assert bool(made.any()) and bool((frozen < 0).any())


def test_ice_raises_conductivity_lowers_heat_capacity_and_impedes_flow():
    theta = torch.full((1, 4), 0.40, **F64)
    dz = torch.tensor(C.SOIL_DZ_M, **F64)
    c0, k0 = layer_properties(theta, 0.0 * theta, dz, LOAM.theta_sat)
    c1, k1 = layer_properties(theta, 0.9 * theta, dz, LOAM.theta_sat)
    assert bool((k1 > 1.5 * k0).all()) and bool((c1 < c0).all())
    imp = ice_impedance(torch.tensor([[0.0, 0.1, 0.3]], **F64), LOAM.theta_sat)
    assert float(imp[0, 0]) == 1.0 and float(imp[0, 2]) < 1e-3 < float(imp[0, 1]) < 1.0


def _warm_then_cold(days_warm=25, days_cold=15, days_rain=2):
    """An hourly column: a warm spell (+25 degC), a hard frost (-20 degC) on bare ground (no snow), then two
    days of rain (30 mm a day) at +2 degC; longwave from the air temperature (emissivity 0.85). The soil starts
    at the record's mean air temperature, above 0 degC."""
    days = days_warm + days_cold + days_rain
    ds = site_twin("DK-Fou", years=days / 365.25, start="2005-01-01", time_step_s=3600).isel(time=slice(0, 24 * days))
    cold, rain = 24 * days_warm, 24 * (days_warm + days_cold)
    ta = np.full(ds.sizes["time"], C.T_FREEZE - 20.0)
    ta[:cold] = C.T_FREEZE + 25.0
    ta[rain:] = C.T_FREEZE + 2.0
    ds["Tair"][:] = ta
    ds["LWdown"][:] = 0.85 * C.STEFAN_BOLTZMANN * ta**4
    ds["Qair"][:] = np.minimum(ds["Qair"].values, 0.5e-3)
    ds["Snowf"][:] = 0.0
    ds["Rainf"][cold:] = 0.0
    ds["Rainf"][rain:] = 30.0 / 86400.0
    return ds, cold, rain


@pytest.fixture(scope="module")
def frost_runs():
    ds, cold, rain = _warm_then_cold()
    p = SPACE.defaults("CRO")
    out = {}
    for frozen in (True, False):
        m = EmbeddedLSM(LsmConfig(frozen_soil=frozen, dtype="float64", compile="off"), device="cpu")
        out[frozen] = m.simulate(ds, p, spinup=False, initial_theta=0.40)
    return out, cold, rain


def test_a_hard_frost_freezes_the_top_layer_before_the_deeper_ones(frost_runs):
    runs, cold, rain = frost_runs
    frac = runs[True]["SMFrozFrac"][0]  # (time, layer)
    assert float(frac[:cold].max()) == 0.0 and float(runs[True]["SoilTemp"][0, :cold].min()) > C.T_FREEZE
    first = [int(torch.nonzero(frac[:, j] > 0.05)[0]) if bool((frac[:, j] > 0.05).any()) else 10**9 for j in range(4)]
    assert cold <= first[0] < first[1] < first[2] < first[3], first
    # with freezing switched off no ice forms, and without the latent heat released by freezing the frost
    # cools the soil below the top layer faster (by over a kelvin on average over the frost)
    assert float(runs[False]["SMFrozFrac"].abs().max()) == 0.0
    t1 = {k: float(r["SoilTemp"][0, cold:rain, 1].mean()) for k, r in runs.items()}
    assert t1[True] > t1[False] + 1.0, t1


def test_frozen_ground_sheds_rain_and_passes_less_water_down(frost_runs):
    runs, cold, rain = frost_runs
    qs = {k: float(r["Qs"][0, rain:].sum()) * 3600 for k, r in runs.items()}  # mm of the 60 mm of rain
    assert qs[True] > 2.0 * qs[False], qs
    # in the frost, the frozen upper layers keep their water (drainage out of them is impeded) and less
    # leaves the column bottom
    upper = {k: float(r["SoilMoist"][0, cold - 1, :2].sum() - r["SoilMoist"][0, rain - 1, :2].sum())
             for k, r in runs.items()}
    assert upper[True] < 0.5 * upper[False], upper
    qsb = {k: float(r["Qsb"][0, cold:].sum()) for k, r in runs.items()}
    assert qsb[True] < qsb[False], qsb
    # while the warm spell is identical
    torch.testing.assert_close(runs[True]["Qle"][0, :cold], runs[False]["Qle"][0, :cold])


def test_ice_cuts_drainage_and_infiltration_of_a_soil_layer():
    """One soil-water step of the same moist column with 5 mm arriving, unfrozen and with 60 % of its water frozen."""
    soil = LOAM
    grid = SoilGrid(dtype=torch.float64, hydraulics=soil)
    theta = torch.full((1, 4), 0.30, **F64)
    args = (theta, torch.zeros(1, 4, **F64), torch.tensor([5.0], **F64), grid, 1800.0, soil.ksat_m_s)
    _, run0, drain0 = soil_step(*args)
    ice = 0.6 * theta
    _, run1, drain1 = soil_step(*args, ice=ice)
    # drainage falls by the impedance 10^(-6 F_ice) (here ~1/500)
    impedance = float(ice_impedance(ice, soil.theta_sat)[0, -1])
    assert impedance < 0.01 and 0.9 * impedance < float(drain1 / drain0) < 1.1 * impedance
    assert float(run0) < 1.0 < 4.9 < float(run1)  # of 5 mm: the frozen top layer lets almost nothing in


def test_gradients_through_a_freezing_run_are_finite():
    ds, _, _ = _warm_then_cold(days_warm=2, days_cold=3, days_rain=1)
    m = EmbeddedLSM(LsmConfig(checkpoint_days=False, dtype="float64"), device="cpu")
    p = torch.tensor(SPACE.from_unit(np.full(SPACE.n, 0.6)), requires_grad=True)
    res = m.simulate(ds, p, daily=True, spinup=False, initial_theta=0.35)
    assert float(res["SMFrozFrac"].max()) > 0.0
    (g,) = torch.autograd.grad(res["Qh"].sum() + res["Qle"].sum() + res["SoilTemp"].sum(), p)
    assert bool(torch.isfinite(g).all()) and float(g.abs().max()) > 0, g


def test_a_frozen_and_a_tropical_column_together_equal_each_alone():
    cold, _, _ = _warm_then_cold(days_warm=2, days_cold=4, days_rain=0)
    warm = site_twin("ID-Pag", years=6 / 365.25, start="2005-01-01", time_step_s=3600)
    warm = warm.isel(time=slice(0, cold.sizes["time"]))
    m = EmbeddedLSM(LsmConfig(dtype="float64", compile="off"), device="cpu")
    p = np.stack([SPACE.defaults("CRO"), SPACE.defaults("EBF")])
    together = m.simulate([cold, warm], p[:, None, :], spinup=False)
    assert float(together["SMFrozFrac"][0].max()) > 0.0
    for i, ds in enumerate([cold, warm]):
        alone = m.simulate(ds, p[i], spinup=False)
        for k in ("Qle", "Qh", "Qsb", "SoilTemp", "SMFrozFrac"):
            torch.testing.assert_close(together[k][i], alone[k][0], rtol=1e-12, atol=1e-12)


def test_a_freezing_layer_settles_instead_of_amplifying_each_change():
    """A deep loam layer in the mushy zone, cooled by a steady 5 W m-2 for two days, hourly: its temperature
    falls smoothly, and a change of the starting temperature fades (the sensitivity stays below one) instead
    of being multiplied by 1 - L_f dz / C x d theta_liq,max / dT (about -10) each step, which made the
    gradients of a frozen winter overflow float32."""
    dz_mm = DZ_MM[2:3].view(1, 1)
    theta = torch.full((1, 1), 0.30, **F64)
    t0 = torch.tensor([[C.T_FREEZE - 0.2]], **F64, requires_grad=True)
    ice = theta - max_liquid(t0.detach(), LOAM.theta_sat, LOAM.psi_sat_m, LOAM.b)  # on the unfrozen-water curve
    t, temps = t0, []
    for _ in range(48):
        heat_cap, _ = layer_properties(theta, ice, torch.tensor([C.SOIL_DZ_M[2]], **F64), LOAM.theta_sat)
        t, ice, _ = phase_change(t - 5.0 * 3600.0 / heat_cap, heat_cap, theta, ice, dz_mm, LOAM.theta_sat,
                                 LOAM.psi_sat_m, LOAM.b)
        temps.append(float(t.detach()))
    (sens,) = torch.autograd.grad(t.sum(), t0)
    assert 0.0 <= float(sens) <= 1.0, float(sens)
    steps = np.diff(temps)
    assert bool((steps <= 1e-12).all()) and temps[-1] < temps[0], temps  # cools monotonically, never flips back


def test_gradients_of_a_spun_up_frozen_winter_are_finite_and_well_conditioned():
    """Twelve January days at the DK-Fou twin, spun up (so the soil starts frozen, in the mushy zone): the
    gradient of the sum of daily Qle + Qh is finite for every parameter, non-zero for each that acts on the
    energy balance (respiration does not), and the same in float32 (as calibration runs) and float64. Before
    the unfrozen-water limit was taken at the end-of-step temperature they differed by up to 10^4 (albedo_canopy:
    5.9e4 in float32, -7.6e8 in float64; now -15.9 in both), and on the 0.1-year twin float32 overflowed."""
    ds = site_twin("DK-Fou", years=12 / 365.25, start="2005-01-01", time_step_s=3600)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        m = EmbeddedLSM(LsmConfig(compile="off", dtype=str(dtype).split(".")[1]), device="cpu")
        p = torch.tensor(SPACE.defaults("CRO"), dtype=dtype, requires_grad=True)
        res = m.simulate(ds, p, daily=True, initial_theta=0.35)
        frozen = res["SMFrozFrac"][0].amax(0)  # most of the top layer's water froze, and some 0.4-1.2 m down
        assert float(frozen[0]) > 0.3 and float(frozen[2]) > 0.005, frozen
        (res["Qle"].sum() + res["Qh"].sum()).backward()
        grads[dtype] = p.grad.double()
    g32, g64 = grads[torch.float32], grads[torch.float64]
    assert bool(torch.isfinite(g32).all()), g32
    for j, name in enumerate(SPACE.names):
        if name in ("resp_base", "q10"):
            assert float(g64[j]) == 0.0
            continue
        assert abs(float(g64[j])) > 1e-6, name
        assert float(g32[j]) == pytest.approx(float(g64[j]), rel=0.05, abs=1e-6), (name, float(g32[j]), float(g64[j]))


def test_frozen_soil_cuts_winter_drainage_at_fi_hyy():
    """January-February at the FI-Hyy twin (boreal forest, long frozen winter), hourly, no spin-up: with
    freezing on, the soil column passes less water down to the aquifer (net recharge) than the same column
    that never freezes (measured: -9.3 mm, i.e. net capillary rise into the drying base under the ice,
    against +5.7 mm), and its top layer is largely ice (0.68)."""
    ds = site_twin("FI-Hyy", years=59 / 365.25, start="2001-01-01", time_step_s=3600)
    recharge, ice = {}, {}
    for frozen in (True, False):
        m = EmbeddedLSM(LsmConfig(frozen_soil=frozen, compile="off"), device="cpu")
        with torch.no_grad():
            res = m.simulate(ds, None, daily=True, spinup=False)
        recharge[frozen] = float(res["Qrec"][0].sum()) * 86400.0  # kg m-2 over the window
        ice[frozen] = float(res["SMFrozFrac"][0, :, 0].max())
    assert ice[True] > 0.3 and ice[False] == 0.0, ice
    assert recharge[True] < 0.8 * recharge[False], recharge
