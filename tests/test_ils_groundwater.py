"""Groundwater (aquifer, water table, recharge / capillary rise, baseflow) and the pond (standing water).

Water budget with every store: P + irrigation - E - runoff - drainage equals the change of soil, snow,
canopy, pond and aquifer water in float64 to 1e-6 mm, and the check fails when any one term is left out.
Physics directions: a shallower water table keeps a drying column wetter and its dry-season Qle higher;
a pond evaporates at the potential rate over the water it covers (potential computed here from the run's
own sensible heat, independent of the ponding code); batch == one by one; the site rule and its errors.
"""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.errors import ModelError
from mdpl.ils import EmbeddedLSM
from mdpl.ils import constants as C
from mdpl.ils.energy_balance import qsat
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.radiation import vegetation_cover
from mdpl.ils.site_water import parse_months, site_water

WATER_TOL = 1e-6


def _with(ds, **attrs):
    out = ds.copy()
    out.attrs = dict(ds.attrs, **attrs)
    return out


def budget_terms(res) -> dict[str, torch.Tensor]:
    """Per column totals over the run (kg m-2): each flux and each store's change."""
    f = {k: v.double() for k, v in res.fluxes.items()}
    dt = res.time_step_s
    s0 = {k: v.double() for k, v in res.initial_stores_mm.items()}
    return dict(
        precip=(f["Rainf"] + f["Snowf"]).sum(1) * dt,
        irrigation=f["Qirrig"].sum(1) * dt,
        evap_other=(f["TVeg"] + f["ESoil"] + f["ECanop"] + f["SubSnow"]).sum(1) * dt,
        evap_pond=f["EWater"].sum(1) * dt,
        runoff=f["Qs"].sum(1) * dt,
        drainage=f["Qsb"].sum(1) * dt,
        d_soil=f["SoilMoist"][:, -1].sum(-1) - s0["soil"],
        d_snow=f["SWE"][:, -1] - s0["snow"],
        d_canopy=f["CanopInt"][:, -1] - s0["canopy"],
        d_pond=f["SurfStor"][:, -1] - s0["pond"],
        d_aquifer=f["GWStor"][:, -1] - s0["aquifer"],
    )


def water_imbalance(t: dict[str, torch.Tensor], drop: str | None = None) -> torch.Tensor:
    """P + I - E - Qs - Qsb - storage change per column; ``drop`` leaves one term out."""
    t = {k: (torch.zeros_like(v) if k == drop else v) for k, v in t.items()}
    stores = t["d_soil"] + t["d_snow"] + t["d_canopy"] + t["d_pond"] + t["d_aquifer"]
    return t["precip"] + t["irrigation"] - t["evap_other"] - t["evap_pond"] - t["runoff"] - t["drainage"] - stores


@pytest.fixture(scope="module")
def model64():
    return EmbeddedLSM(device="cpu", dtype=torch.float64)


@pytest.fixture(scope="module")
def three_columns(model64):
    """A flooded paddy, a wetland and upland soil over a shallow water table, 12 summer days."""
    base = site_twin("DK-Fou", years=12 / 365.25, start="2005-06-20")
    sites = [_with(base, site="paddy", paddy_flood_months="6-7"),
             _with(base, site="wetland", wetland=1),
             _with(base, site="upland", water_table_depth_m=3.2)]
    return model64.simulate(sites, SPACE.defaults("CRO"), spinup=False)


def test_water_budget_with_pond_and_aquifer_closes_and_each_term_counts(model64, three_columns):
    res = three_columns
    terms = budget_terms(res)
    err = water_imbalance(terms)
    assert err.abs().max() <= WATER_TOL, err
    torch.testing.assert_close(res.water_balance_mm(), err, atol=1e-9, rtol=0)
    # every term of the budget was exercised by one of the columns
    assert terms["irrigation"][0] > 1.0 and terms["evap_pond"][0] > 1.0 and terms["evap_pond"][1] > 0
    assert terms["d_pond"].abs().max() > 1.0 or res["SurfStor"].max() > 1.0
    assert terms["drainage"].min() > 0 and terms["d_aquifer"].abs().max() > 1e-3
    assert res["Qrec"][2].min() < 0  # capillary rise from the shallow water table
    assert terms["precip"].min() > 1.0 and terms["d_soil"].abs().max() > 1.0
    # the check can fail: leaving out any flux or store breaks it by far more than the tolerance
    for name in ("irrigation", "evap_pond", "drainage", "d_pond", "d_aquifer", "evap_other", "d_soil"):
        assert water_imbalance(terms, drop=name).abs().max() > 1e3 * WATER_TOL, name
    # the energy budget still closes with pond evaporation in the latent heat
    assert res["energy_residual"].abs().max() < 0.01
    lv = (C.LATENT_VAPORISATION * (res["TVeg"] + res["ESoil"] + res["ECanop"] + res["EWater"])
          + C.LATENT_SUBLIMATION * res["SubSnow"])
    torch.testing.assert_close(res["Qle"], lv, rtol=1e-9, atol=1e-6)
    # stores stay physical
    assert res["SurfStor"].min() > -1e-9 and res["GWStor"].max() < 1e-9
    assert res["WaterTableD"].min() > -1e-9


def test_pond_evaporates_at_the_potential_rate_of_the_water_it_covers(three_columns):
    res = three_columns
    ds = site_twin("DK-Fou", years=12 / 365.25, start="2005-06-20")
    ta = torch.as_tensor(ds["Tair"].values, dtype=torch.float64)
    qa = torch.as_tensor(ds["Qair"].values, dtype=torch.float64)
    ps = torch.as_tensor(ds["Psurf"].values, dtype=torch.float64)
    lai = torch.as_tensor(ds["LAI"].values, dtype=torch.float64).clamp_min(0.01)
    bare = 1.0 - vegetation_cover(lai)
    ts = res["Tsurf"][0]
    # rho ga from the run's own sensible heat, Qh = rho cp ga (Ts - Ta), where the gradient is large
    use = ((ts - ta).abs() > 1.0) & (res["SurfStor"][0] > 2 * C.POND_FULL_COVER_KG_M2) & (qsat(ts, ps) > qa)
    assert use.sum() > 20
    rho_ga = res["Qh"][0, use] / (C.CP_AIR * (ts - ta)[use])
    potential = bare[use] * rho_ga * (qsat(ts, ps)[use] - qa[use])
    ratio = res["EWater"][0, use] / potential
    assert ratio.min() > 0.97 and ratio.max() < 1.0 + 1e-6, (ratio.min(), ratio.max())
    # the soil under a pond that covers it all does not evaporate
    assert res["ESoil"][0, use].abs().max() < 1e-9
    # flooding raises evaporation: the paddy's Qle above the upland column's
    assert res["Qle"][0].mean() > res["Qle"][2].mean() + 5.0


def test_a_shallower_water_table_raises_dry_season_qle(model64):
    """A Mediterranean July from a dry start, deep roots whose stress starts at field capacity: capillary
    rise from a water table 0.2 m below the soil column wets the bottom layer and keeps transpiration
    up; from a water table 8 m down little water rises."""
    ds = site_twin("ES-ES2", years=20 / 365.25, start="2005-07-01", time_step_s=3600)  # dry season
    sites = [_with(ds, site="shallow", water_table_depth_m=3.2), _with(ds, site="deep", water_table_depth_m=8.0)]
    p = SPACE.defaults("CRO")
    p[SPACE.index("root_depth_m")], p[SPACE.index("stress_onset")] = 3.0, 1.0
    theta0 = torch.tensor([0.16, 0.16, 0.18, 0.26], dtype=torch.float64)
    res = model64.simulate(sites, p, spinup=False, initial_theta=theta0)
    assert float(res["Rainf"][0].sum()) * res.time_step_s < 50.0  # a dry month
    shallow, deep = res["Qle"][0].mean(), res["Qle"][1].mean()
    assert shallow > deep + 3.0, (float(shallow), float(deep))
    assert res["Qh"][0].mean() < res["Qh"][1].mean()
    rise = -res["Qrec"].sum(1) * res.time_step_s  # kg m-2 of capillary rise over the run
    assert rise[0] > 50.0 and rise[0] > 3 * rise[1], rise
    assert res["SoilMoist"][0, -1, -1] > res["SoilMoist"][1, -1, -1]
    assert res["WaterTableD"][0, -1] < res["WaterTableD"][1, -1]
    assert water_imbalance(budget_terms(res)).abs().max() <= WATER_TOL


def test_batch_equals_one_by_one_with_different_site_water(model64):
    base = site_twin("DK-Fou", years=2 / 365.25, start="2005-06-20")
    sites = [_with(base, site="paddy", paddy_flood_months="6"), _with(base, site="wetland", wetland=1),
             _with(base, site="upland", water_table_depth_m=3.5)]
    sets = np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))])
    batch = model64.simulate(sites, sets, spinup=False)
    for i, one_site in enumerate(sites):
        one = model64.simulate(one_site, sets, spinup=False)
        for k in ("Qle", "Qh", "EWater", "Qsb", "SurfStor", "GWStor", "WaterTableD", "Qirrig"):
            torch.testing.assert_close(batch[k][2 * i: 2 * i + 2], one[k], rtol=1e-10, atol=1e-10)


def test_site_rule_attributes_then_igbp():
    assert site_water("s", "WET", {}).wetland and not site_water("s", "CRO", {}).wetland
    assert not site_water("s", "WET", {"wetland": "0"}).wetland
    assert site_water("s", "EBF", {"wetland": "true"}).wetland
    up, wet, paddy = site_water("s", "GRA", {}), site_water("s", "WET", {}), site_water("s", "CRO", {
        "paddy_flood_months": "5-9"})
    assert paddy.flood_months == (5, 6, 7, 8, 9) and paddy.paddy and not up.paddy
    assert up.baseflow_max_kg_m2_s == C.BASEFLOW_MAX_KG_M2_S
    assert wet.baseflow_max_kg_m2_s == paddy.baseflow_max_kg_m2_s == C.IMPEDED_BASEFLOW_MAX_KG_M2_S
    assert up.spill_kg_m2 < wet.spill_kg_m2 and up.initial_water_table_m is None
    assert wet.initial_water_table_m == 0.0 and paddy.initial_water_table_m == 0.0
    assert site_water("s", "GRA", {"water_table_depth_m": "4.5"}).initial_water_table_m == 4.5
    assert parse_months("s", "11-2") == (1, 2, 11, 12) and parse_months("s", "") == ()
    assert parse_months("s", "6, 8") == (6, 8)
    with pytest.raises(ModelError, match="site s: attribute paddy_flood_months='13'"):
        parse_months("s", "13")
    with pytest.raises(ModelError, match="site s: attribute paddy_flood_months='May'"):
        parse_months("s", "May")
    with pytest.raises(ModelError, match="site s: attribute wetland='maybe'"):
        site_water("s", "GRA", {"wetland": "maybe"})
    with pytest.raises(ModelError, match="site s: attribute water_table_depth_m=-1.0"):
        site_water("s", "GRA", {"water_table_depth_m": -1})


def test_documented_site_table_reaches_the_attributes():
    from mdpl.data.catalogue import site_water_facts

    assert site_water_facts("ES-ES2") == {"wetland": "0", "paddy_flood_months": "5-9"}
    assert site_water_facts("ID-Pag") == {"wetland": "1"}
    assert site_water_facts("DK-Fou") == {}


def test_a_frozen_bottom_layer_neither_drains_nor_lifts_its_ice():
    """groundwater_step with the bottom layer's water frozen down to residual liquid: no recharge leaves it
    (the same water unfrozen drains, kg m-2 per half hour), capillary rise into it from a water table just
    below is cut by the ice impedance, and the layer's water changes only by what crossed its base."""
    from mdpl.ils.freezing import ice_impedance
    from mdpl.ils.groundwater import aquifer_for_water_table, groundwater_step
    from mdpl.ils.soil_texture import cosby_hydraulics

    f64 = dict(dtype=torch.float64)
    soil = cosby_hydraulics(torch.tensor([0.42], **f64), torch.tensor([0.20], **f64), torch.tensor([1.0], **f64))
    dz_mm = torch.tensor(C.SOIL_DZ_M, **f64) * C.RHO_WATER
    wet = torch.tensor([[0.30, 0.30, 0.30, 0.40]], **f64)  # a wet bottom layer over a deep water table: recharge
    dry = torch.tensor([[0.30, 0.30, 0.30, 0.15]], **f64)  # a dry one over a water table 10 cm below: rise
    args = (soil.theta_fc, soil.theta_sat, soil.psi_sat_m, soil.b, soil.ksat_m_s, torch.zeros(1, **f64), 1800.0)
    for theta, zwt, sign in ((wet, 6.0, 1.0), (dry, 3.1, -1.0)):
        aquifer = aquifer_for_water_table(torch.tensor([zwt], **f64))
        frozen = torch.zeros_like(theta)
        frozen[:, -1] = theta[:, -1] - C.THETA_RES  # all but the residual water is ice
        _, _, q_liquid, _, _ = groundwater_step(theta, aquifer, dz_mm, *args)
        th_ice, aq_ice, q_ice, _, _ = groundwater_step(theta, aquifer, dz_mm, *args, ice=frozen)
        assert sign * float(q_liquid) > 1e-3, float(q_liquid)  # unfrozen: kg m-2 per half hour cross the base
        # frozen: nothing drains (its liquid is at residual, whose suction pulls water up), and any rise is cut
        # by the ice impedance 10^(-6 F_ice)
        impedance = float(ice_impedance(frozen[:, -1], soil.theta_sat[:, 0]))
        assert impedance < 0.05
        assert float(q_ice) <= 0.0 and -float(q_ice) <= 1.5 * impedance * abs(float(q_liquid)), (float(q_ice), impedance)
        torch.testing.assert_close((theta - th_ice)[:, -1] * dz_mm[-1], q_ice)  # the ice did not move
        torch.testing.assert_close(aq_ice - aquifer, q_ice)  # no baseflow here: the aquifer got what left
