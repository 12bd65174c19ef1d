"""The two-source surface energy balance (``lsm.energy_balance: two_source``, :mod:`mdpl.ils.two_source`).

- Energy: the column's heat content change (soil and snow; the canopy stores no heat) equals the energy
  that enters at the surface, Rnet - Qh - Qle, to <= 0.01 W m-2 on average in float64, with Qg checked
  against the soil's own heat content change (the checks of ``test_ils_conservation``, reused); the
  checks fail when a term is dropped or when the 2x2 Newton solve is cut to one iteration. The
  radiation scheme closes (canopy + ground net radiation = SW absorbed + LWdown - LWup) and the analytic
  Jacobian of the solver equals autograd's.
- Water: P + irrigation - E - runoff - drainage = storage change (soil, snow, canopy, pond, aquifer) to 1e-6 mm.
- Physics direction: over a flooded paddy with a dense canopy the leaves stay warmer than the water and
  midday Qh is positive where the one-source skin, cooled by the water, gives far less; as LAI -> 0 the
  two-source balance tends to the one-source one.
- Gradients finite and non-zero for every calibrated parameter; batch == one by one; a bad option is a
  ConfigError naming ``lsm.energy_balance``.
"""

import numpy as np
import pytest
import torch

from mdpl.config import LsmConfig, config_from_dict
from mdpl.data.synthetic import site_twin
from mdpl.errors import ConfigError
from mdpl.ils import EmbeddedLSM
from mdpl.ils import constants as C
from mdpl.ils import two_source as ts
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from test_ils_conservation import ENERGY_TOL, _check_budgets, column_energy_terms, energy_imbalance
from test_ils_conservation import snowy_and_wet  # noqa: F401  (the same winter and wet-forest batch, a fixture)

TWO = LsmConfig(energy_balance="two_source", checkpoint_days=False)


def _with(ds, **attrs):
    out = ds.copy()
    out.attrs = dict(ds.attrs, **attrs)
    return out


def _lai(ds, value: float):
    out = ds.copy()
    out["LAI"] = out["LAI"] * 0 + value
    return out


@pytest.fixture(scope="module")
def model64():
    return EmbeddedLSM(TWO, device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def one64():
    return EmbeddedLSM(LsmConfig(checkpoint_days=False), device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def paddy_summer():
    """A flooded rice paddy (ES-ES2's climate) under a dense canopy (LAI 4), 8 midsummer days."""
    ds = site_twin("ES-ES2", years=8 / 365.25, start="2005-07-01")
    return _with(_lai(ds, 4.0), paddy_flood_months="1-12")


def test_bad_option_is_a_config_error():
    with pytest.raises(ConfigError, match="lsm.energy_balance: expected 'one_source' or 'two_source', got 'three'"):
        EmbeddedLSM(LsmConfig(energy_balance="three"), device="cpu")
    with pytest.raises(ConfigError, match="lsm.energy_balance"):
        config_from_dict({"lsm": {"energy_balance": "skin"}})
    assert config_from_dict({"lsm": {"energy_balance": "two_source"}}).lsm.energy_balance == "two_source"


def _terms(n=64, seed=0, dtype=torch.float64):
    """Random but physical coefficients for the solver (every flux active)."""
    g = torch.Generator().manual_seed(seed)

    def u(a, b):
        return a + (b - a) * torch.rand(n, generator=g, dtype=dtype)

    rho = u(1.0, 1.25)
    lai = u(0.05, 6.0)
    ustar = u(0.05, 0.8)
    ga, gb, gg = u(0.005, 0.08), ts.leaf_boundary_conductance(lai, ustar), ts.under_canopy_conductance(lai, ustar)
    ps = u(8e4, 1.02e5)
    ta = u(265.0, 310.0)
    return ts.TwoSourceTerms(
        sw_veg=u(0, 700), sw_ground=u(0, 200), lw_down=u(250, 450), eps_veg=ts.canopy_emissivity(lai),
        tair=ta, qair=0.6 * (0.622 * 611.2 / ps) * torch.exp(17.67 * (ta - 273.15) / (ta - 29.65)), cq=0.622 * 611.2 / ps,
        h_air=rho * C.CP_AIR * ga, h_veg=rho * C.CP_AIR * gb, h_ground=rho * C.CP_AIR * gg, w_air=rho * ga,
        g_ground=u(1, 10), t_soil1=ta + u(-5, 5),
        rho_g_transp=rho / (1 / gb + 1 / u(0.001, 0.02)), rho_g_wet=rho * gb, wc_rate=u(0, 2e-4),
        wet_k_dt=rho * gb * 1800 / u(0.2, 2.0), tr_supply=u(1e-5, 1e-4),
        rho_g_soil=rho * u(0, 1) / (1 / gg + u(50, 500)), rho_g_snow=rho * u(0, 0.5) * gg,
        pond_rate=u(0, 1e-2), pond_k_dt=rho * gg * 1800 / 10.0, rho_g_pond=rho * u(0, 1) * gg,
    )


def test_radiation_closes_and_the_jacobian_is_exact():
    t = _terms()
    g = torch.Generator().manual_seed(1)
    tv = (t.tair + 10 * torch.rand(t.tair.shape, generator=g, dtype=torch.float64) - 3).requires_grad_(True)
    tg = (t.tair + 10 * torch.rand(t.tair.shape, generator=g, dtype=torch.float64) - 5).requires_grad_(True)
    (f_v, f_g), jac, sol = ts._balance(t, tv, tg, True)
    # radiation: canopy + ground absorb exactly SW + LWdown - LWup, with LWup of the radiative temperature
    eps = 1 - (1 - C.EMISSIVITY) * (1 - t.eps_veg) ** 2  # the ground's reflection, through the gaps twice
    lw_up = eps * C.STEFAN_BOLTZMANN * sol.ts**4 + (1 - eps) * t.lw_down
    torch.testing.assert_close(sol.rnet, t.sw_veg + t.sw_ground + t.lw_down - lw_up, rtol=0, atol=1e-9)
    # the radiative temperature lies between the leaves' and the ground's
    assert ((sol.ts >= torch.minimum(tv, tg) - 1e-9) & (sol.ts <= torch.maximum(tv, tg) + 1e-9)).all()
    # the analytic Jacobian equals autograd's
    rows = []
    for f in (f_v, f_g):
        rows.append(torch.autograd.grad(f.sum(), (tv, tg), retain_graph=True))
    auto = (rows[0][0], rows[0][1], rows[1][0], rows[1][1])
    for name, a, b in zip(("dfv/dTv", "dfv/dTg", "dfg/dTv", "dfg/dTg"), jac, auto):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)


def test_newton_converges_from_far_away():
    t = _terms(seed=3)
    sol = ts.solve_two_source(t, t.tair - 15.0, t.tair + 20.0, 8)
    assert sol.residual.abs().max() < 1e-6
    (f_v, f_g), _, _ = ts._balance(t, sol.tv, sol.tg, False)
    assert f_v.abs().max() < 1e-6 and f_g.abs().max() < 1e-6  # each balance alone, not only their sum


def test_two_source_conserves_energy_and_water(model64, snowy_and_wet):
    rng = np.random.default_rng(1)
    sets = np.concatenate([SPACE.defaults("GRA")[None], SPACE.from_unit(rng.random((2, SPACE.n)))])
    res = model64.simulate(snowy_and_wet, sets, spinup=False)
    terms = _check_budgets(res, "two-source synthetic")
    # two temperatures: leaves and ground differ (by several K at times), the radiative Tsurf lies between them
    diff = (res["VegT"] - res["GroundT"]).abs()
    assert diff.max() > 3.0
    lo, hi = torch.minimum(res["VegT"], res["GroundT"]), torch.maximum(res["VegT"], res["GroundT"])
    assert ((res["Tsurf"] >= lo - 1e-6) & (res["Tsurf"] <= hi + 1e-6)).all()
    assert res["SWE"][:3].max() > 1.0 and res["Qsm"][:3].sum() > 0 and res["ECanop"][3:].max() > 0
    # the check can fail: leaving out latent heat, or the heat that melted snow, breaks the budget
    assert energy_imbalance(terms, drop="Qle").abs().max() > 100 * ENERGY_TOL
    assert energy_imbalance(terms, drop="melt")[:3].abs().max() > ENERGY_TOL
    # ... and so does leaving out the ground heat flux at the surface (the soil warms and cools)
    assert (terms["surface"] - terms["qg"]).abs().mean() < ENERGY_TOL < terms["qg"].abs().mean()


def test_one_newton_iteration_leaves_the_two_source_balance_unbalanced(snowy_and_wet):
    short = [d.isel(time=slice(0, 5 * 48)) for d in snowy_and_wet]
    cfg = LsmConfig(energy_balance="two_source", newton_iterations=1)
    res = EmbeddedLSM(cfg, device="cpu", dtype=torch.float64).simulate(short, SPACE.defaults("GRA"), spinup=False)
    assert res["energy_residual"].abs().mean() > ENERGY_TOL


def test_paddy_water_budget_closes_with_pond_and_aquifer(model64, paddy_summer):
    from test_ils_groundwater import budget_terms, water_imbalance

    res = model64.simulate(paddy_summer, SPACE.defaults("CRO"), spinup=False)
    terms = budget_terms(res)
    assert water_imbalance(terms).abs().max() <= 1e-6
    assert terms["irrigation"][0] > 1.0 and terms["evap_pond"][0] > 1.0
    lv = (C.LATENT_VAPORISATION * (res["TVeg"] + res["ESoil"] + res["ECanop"] + res["EWater"])
          + C.LATENT_SUBLIMATION * res["SubSnow"])
    torch.testing.assert_close(res["Qle"], lv, rtol=1e-9, atol=1e-6)
    assert res["energy_residual"].abs().max() < 0.01


def _midday(res, ds):
    sunny = torch.as_tensor(ds["SWdown"].values > 600.0)
    return {k: res[k][0, sunny] for k in ("Qh", "Qle", "VegT", "GroundT", "Tsurf", "EWater", "TVeg")}


def test_dense_canopy_over_water_keeps_its_sensible_heat(model64, one64, paddy_summer):
    p = SPACE.defaults("CRO")
    two_run, one_run = (m.simulate(paddy_summer, p, spinup=False) for m in (model64, one64))
    two, one = _midday(two_run, paddy_summer), _midday(one_run, paddy_summer)
    print({k: (float(two[k].mean()), float(one[k].mean())) for k in two})
    # leaves in the sun are warmer than the water below them, and give sensible heat to the air
    assert (two["VegT"] - two["GroundT"]).mean() > 1.0
    assert two["Qh"].mean() > 60.0
    # the one skin is cooled by the open water: much less sensible heat at the same steps
    assert two["Qh"].mean() > one["Qh"].mean() + 15.0
    # the water under the canopy evaporates less than open water in the sun (it is shaded and sheltered)
    assert two["EWater"].mean() < 0.8 * one["EWater"].mean()
    # whole sunny days: the two-source canopy heats the air, the one skin much less
    day = torch.as_tensor(paddy_summer["SWdown"].values).reshape(-1, 48).mean(1) > 250.0
    qh2, qh1 = (r["Qh"][0].reshape(-1, 48).mean(1)[day] for r in (two_run, one_run))
    print("sunny-day Qh", qh2.tolist(), qh1.tolist())
    assert day.sum() >= 3 and qh2.min() > 0.0 and (qh2 - qh1).mean() > 5.0


def test_without_leaves_two_source_is_nearly_one_source(model64, one64, paddy_summer):
    """LAI -> 0 (the model's floor, 0.01): the canopy neither absorbs nor exchanges, the ground is the skin."""
    p = SPACE.defaults("CRO")
    for flooded in (True, False):
        ds = _lai(paddy_summer if flooded else _with(paddy_summer, paddy_flood_months=""), 0.0)
        two = model64.simulate(ds, p, spinup=False, daily=True)
        one = one64.simulate(ds, p, spinup=False, daily=True)
        for k in ("Qh", "Qle", "Rnet"):
            gap = float((two[k] - one[k]).abs().max())
            print(flooded, k, gap, float(one[k].abs().mean()))
            assert gap < 0.03 * float(one[k].abs().mean()) + 1.0, (flooded, k, gap)
    # and with leaves it is not (so the comparison above can fail)
    two = model64.simulate(paddy_summer, p, spinup=False, daily=True)
    one = one64.simulate(paddy_summer, p, spinup=False, daily=True)
    assert float((two["Qh"] - one["Qh"]).abs().mean()) > 10.0


def test_every_parameter_has_a_finite_nonzero_gradient():
    summer = site_twin("DK-Fou", years=3 / 365.25, start="2005-06-02")
    m = EmbeddedLSM(TWO, device="cpu", dtype=torch.float64)
    p = torch.tensor(SPACE.from_unit(np.full(SPACE.n, 0.6)), requires_grad=True)
    res = m.simulate(summer, p, daily=True, spinup=False, initial_theta=0.24)
    g = torch.stack([torch.autograd.grad(res[k].sum(), p, retain_graph=True)[0] for k in ("Qle", "Qh", "NEE")])
    assert torch.isfinite(g).all()
    for j, name in enumerate(SPACE.names):
        assert g[:, j].abs().max() > 1e-8, f"no gradient for {name}: {g[:, j].tolist()}"
    assert g[2, SPACE.index("vcmax25")] < 0 and g[1, SPACE.index("albedo_canopy")] < 0


def test_gradcheck_float64_short_run():
    summer = site_twin("DK-Fou", years=3 / 365.25, start="2005-06-02")
    start = int(np.flatnonzero(summer["SWdown"].values > 300)[0])
    m = EmbeddedLSM(TWO, device="cpu", dtype=torch.float64)
    forcing = m.forcing(summer.isel(time=slice(start, start + 4)))
    base = torch.tensor(SPACE.defaults("CRO"))[None]
    scale = torch.tensor(SPACE.upper - SPACE.lower)

    def f(u):
        r = m.simulate(forcing, base + u * scale, spinup=False, initial_theta=0.22)
        return torch.stack([r["Qle"].mean(1), r["Qh"].mean(1), r["NEE"].mean(1)], 1)

    u = torch.zeros(1, SPACE.n, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (u,), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_batch_equals_one_by_one(model64):
    sites = [site_twin("DK-Fou", years=3 / 365.25, start="2005-06-10"),
             _with(_lai(site_twin("ES-ES2", years=3 / 365.25, start="2005-06-10"), 3.0), paddy_flood_months="6")]
    p = np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))])
    together = model64.simulate(sites, p, spinup=False)
    for i, ds in enumerate(sites):
        for j in range(2):
            alone = model64.simulate(ds, p[j], spinup=False)
            for k in ("Qle", "Qh", "NEE", "VegT", "GroundT", "Tsurf"):
                torch.testing.assert_close(together[k][2 * i + j], alone[k][0], rtol=1e-10, atol=1e-9)


def test_float32_two_source_closes_to_half_a_watt():
    ds = site_twin("ZA-Kru", years=10 / 365.25, start="2005-01-01")
    res = EmbeddedLSM(LsmConfig(energy_balance="two_source"), device="cpu").simulate(ds, None, spinup=False)
    assert res["energy_residual"].abs().max() < 0.5
    assert res.water_balance_mm().abs().max() < 0.05


@pytest.mark.full
def test_compiled_two_source_step_gives_the_eager_answer():
    sites = [site_twin(c, years=2 / 365.25, start="2005-06-10") for c in ("DK-Fou", "ZA-Kru")]
    runs = {}
    for mode in ("off", "on"):
        m = EmbeddedLSM(LsmConfig(energy_balance="two_source", compile=mode), device="cpu")
        with torch.no_grad():
            runs[mode] = m.simulate(sites, SPACE.defaults("CRO"), spinup=False)
        assert m.compile_error is None
    assert runs["on"].diagnostics["compiled_step"]
    for k in ("Qle", "Qh", "NEE", "VegT", "GroundT"):
        scale = max(1.0, float(runs["off"][k].abs().max()))
        assert float((runs["on"][k] - runs["off"][k]).abs().max()) < 1e-4 * scale, k


@pytest.mark.realdata
def test_real_snowmelt_season_two_source_conserves(model64, real_data_dir):
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=["FI-Hyy"])[0].sel(time=slice("2001-03-15", "2001-04-14"))
    res = model64.simulate(ds, None, spinup=False)
    terms = _check_budgets(res, "FI-Hyy snowmelt, two-source")
    assert res["Qsm"].sum() * res.time_step_s > 2.0
    assert energy_imbalance(terms, drop="melt").abs().max() > ENERGY_TOL


@pytest.mark.realdata
@pytest.mark.full
@pytest.mark.parametrize("site", ["ES-ES2", "FI-Hyy"])
def test_real_year_two_source_conserves_energy_and_water(model64, real_data_dir, site):
    """A whole real year in float64: the flooded paddy (pond, irrigation) and the boreal forest (snow)."""
    from mdpl.data import load_sites

    ds = load_sites(real_data_dir, sites=[site])[0].isel(time=slice(0, 365 * 48))
    res = model64.simulate(ds, None, spinup=False)
    terms = _check_budgets(res, f"{site} year, two-source")
    assert energy_imbalance(terms, drop="Qle").abs().max() > 100 * ENERGY_TOL
    assert column_energy_terms(res)["qg"].abs().mean() > 1.0
