"""Credible calibration: the Sobol screen, parameters the targets cannot see, the land-model check, closure targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mdpl.calibrate.selection import candidate_key, select_candidates
from mdpl.calibrate.sensitivity import free_mask, sobol_screen
from mdpl.calibrate.surrogate_route import calibrate_mdpl
from mdpl.calibrate.targets import observed_daily, site_targets
from mdpl.config import Config
from mdpl.data.closure import bowen_closure
from mdpl.data.features import FORCING_FEATURES, STATIC_FEATURES, SiteFeatures
from mdpl.models.generator import ParameterGenerator


class Space4:
    """a (light use), b (LAI half-saturation, log), c (sensible fraction), r (respiration: NEE only)."""

    names = ["a", "b", "c", "r"]
    units = ["1", "m2 m-2", "1", "umol m-2 s-1"]
    lower = np.array([0.05, 0.1, 0.1, 0.5])
    upper = np.array([0.6, 5.0, 0.8, 8.0])
    log = np.array([False, True, False, True])

    def defaults(self, igbp):
        return np.array([0.2, 0.5, 0.3, 2.0])


class Surrogate4:
    """Qle = a SW LAI/(LAI+b) + noise(r); Qh = c SW - 0.3 Qle; NEE = r - 0.01 a SW.

    r reaches NEE, and Qle only through a tiny spurious term of the size of a
    neural surrogate's error (``wobble`` W m-2): a gradient, but no signal.
    """

    kind = "multitask"
    tasks = ["Qle", "Qh", "NEE"]
    space = Space4()

    def predict(self, f, params):
        sw = torch.as_tensor(f.forcing_var("SWdown"), dtype=params.dtype)[None, :]
        lai = torch.as_tensor(f.forcing_var("LAI"), dtype=params.dtype)[None, :]
        a, b, c, r = (params[:, k : k + 1] for k in range(4))
        qle = a * sw * lai / (lai + b) + self.wobble * torch.sin(3.0 * r) * (sw / 150.0)
        return {"Qle": qle, "Qh": c * sw - 0.3 * qle, "NEE": r - 0.01 * a * sw}

    wobble = 0.0


TRUTH = np.array([0.45, 1.2, 0.35, 5.0])


def site(name="A", seed=0, days=240, truth=TRUTH):
    rng = np.random.default_rng(seed)
    d = pd.date_range("2005-01-01", periods=days, freq="D")
    forcing = np.ones((days, len(FORCING_FEATURES)), np.float32)
    t = np.arange(days)
    forcing[:, FORCING_FEATURES.index("SWdown")] = np.clip(150 + 100 * np.sin(2 * np.pi * t / 365) + 40 * rng.standard_normal(days), 5, None)
    forcing[:, FORCING_FEATURES.index("LAI")] = np.clip(1.5 + 1.2 * np.sin(2 * np.pi * (t - 30) / 365), 0.1, None)
    f = SiteFeatures(name, "GRA", "grassland", d, forcing, d.day_of_year.to_numpy(),
                     rng.standard_normal(len(STATIC_FEATURES)).astype(np.float32), {}, {})
    true = Surrogate4().predict(f, torch.as_tensor(truth, dtype=torch.float64)[None, :])
    for k in ("Qle", "Qh", "NEE"):
        f.obs[k] = (true[k][0].numpy() + 0.5 * rng.standard_normal(days)).astype(np.float32)
        f.obs_mask[k] = np.ones(days, bool)
    return f


def _cfg(epochs=300):
    cfg = Config(seed=0)
    cfg.calibration.mode = "site"
    cfg.calibration.quick_epochs = epochs
    cfg.calibration.learning_rate = 3e-2
    return cfg


def test_sobol_screen_finds_what_each_flux_sees():
    f = site()
    si = sobol_screen(Surrogate4(), [f], [np.ones(f.n_days, bool)], n_base=256)
    st = si.pivot_table(index="parameter", columns="flux", values="ST")
    # r reaches NEE only; c reaches Qh only; a reaches all three
    assert st.loc["r", "Qle"] < 0.01 and st.loc["r", "Qh"] < 0.01 and st.loc["r", "NEE"] > 0.2
    assert st.loc["c", "Qle"] < 0.01 and st.loc["c", "Qh"] > 0.2
    assert st.loc["a", "Qle"] > 0.2
    mask = free_mask(si, ["A"], Space4.names, ["Qle", "Qh"], 0.05)
    assert mask.tolist() == [[True, True, True, False]]
    assert free_mask(si, ["A"], Space4.names, ["Qle", "Qh", "NEE"], 0.05).all()


def test_a_parameter_the_targets_cannot_see_stays_at_its_default():
    f = site()
    cfg = _cfg()
    sur = Surrogate4()
    sur.wobble = 1.0
    res = calibrate_mdpl(sur, [f], cfg, progress=False)
    default = Space4().defaults("GRA")
    assert res.params[0, 3] == pytest.approx(default[3], rel=1e-6)  # r: NEE only, not calibrated
    assert res.info["fixed_parameters"] == {"A": ["r"]}
    np.testing.assert_allclose(res.params[0, :3], TRUTH[:3], rtol=0.1)  # the visible ones are recovered
    assert set(res.tables["sensitivity"].columns) >= {"site", "flux", "parameter", "ST", "calibrated"}
    # without the screen, the surrogate's spurious gradient drags r far from its default
    cfg.calibration.screen = False
    free = calibrate_mdpl(sur, [f], cfg, progress=False)
    assert free.info["fixed_parameters"] == {}
    assert abs(np.log(free.params[0, 3] / default[3])) > 0.3


def test_generator_free_mask_holds_fixed_parameters_exactly_at_the_prior():
    g = ParameterGenerator(3, Space4.lower, Space4.upper, log=Space4.log, hidden=8)
    torch.nn.init.normal_(g.net[-1].weight)  # a generator that moves everything
    x = torch.randn(2, 3)
    prior = torch.as_tensor(np.stack([Space4().defaults("GRA")] * 2), dtype=torch.float32)
    free = torch.tensor([[True, True, False, False], [False, True, True, True]])
    out = g(x, prior, free=free)
    assert torch.equal(out[~free], prior[~free])
    assert torch.all((out[free] - prior[free]).abs() > 1e-6)


def test_land_model_check_keeps_the_best_candidate_on_training_days_only():
    f = site()
    train = np.zeros(f.n_days, bool)
    train[:120] = True
    test = ~train
    obs = f.obs["Qle"].astype(float)
    days = pd.DatetimeIndex(f.days)
    good_train = obs.copy()
    good_train[test] += 50.0  # perfect on training days, bad on test days
    good_test = obs.copy()
    good_test[train] += 50.0
    sims = [{"default": pd.DataFrame({"Qle": obs + 20.0}, index=days),
             candidate_key("mdpl", 10): pd.DataFrame({"Qle": good_test}, index=days),
             candidate_key("mdpl", 20): pd.DataFrame({"Qle": good_train}, index=days)}]
    cands = {10: np.array([[1.0, 1, 1, 1]]), 20: np.array([[2.0, 2, 2, 2]])}
    chosen, rows, notes = select_candidates([f], sims, [(train, test)], "mdpl", cands, np.zeros((1, 4)),
                                            {"Qle": 1.0}, "observed")
    assert rows[0]["chosen"] == "20" and chosen[0, 0] == 2.0 and not notes
    # when every checkpoint is worse than the defaults on training days, the defaults stay, with a note
    sims[0]["default"] = pd.DataFrame({"Qle": obs}, index=days)
    chosen, rows, notes = select_candidates([f], sims, [(train, test)], "mdpl", cands, np.zeros((1, 4)),
                                            {"Qle": 1.0}, "observed")
    assert rows[0]["chosen"] == "default" and np.all(chosen == 0) and "defaults kept" in notes[0]


def test_bowen_closure_preserves_the_bowen_ratio_and_closes_the_budget():
    n = 60
    qle, qh = np.full(n, 60.0), np.full(n, 40.0)
    rnet, qg = np.full(n, 150.0), np.full(n, 10.0)
    c = bowen_closure(qle, qh, rnet, qg)
    np.testing.assert_allclose(c.ratio, 1.4)
    np.testing.assert_allclose(c.qle_w_m2 + c.qh_w_m2, rnet - qg)
    np.testing.assert_allclose(c.qle_w_m2 / c.qh_w_m2, 1.5)
    # no Qg: Rnet is the available energy, and the closure says so
    c0 = bowen_closure(qle, qh, rnet, None)
    np.testing.assert_allclose(c0.qle_w_m2 + c0.qh_w_m2, rnet) and c0.notes
    # nights and outliers do not set the ratio: a day with tiny fluxes takes its neighbours' ratio
    qle2 = qle.copy()
    qle2[30], qh[30] = 2.0, 1.0
    c2 = bowen_closure(qle2, qh, rnet, qg)
    assert c2.ratio[30] == pytest.approx(1.4)
    assert bowen_closure(np.full(5, 1.0), np.full(5, 1.0), np.full(5, 100.0)) is None  # nothing qualifies


def test_target_bases_pick_the_series_they_name():
    f = site()
    n = f.n_days
    f.obs["Qle_cor"], f.obs_mask["Qle_cor"] = f.obs["Qle"] * 1.2, np.ones(n, bool)
    f.obs["Rnet"], f.obs_mask["Rnet"] = (f.obs["Qle"] + f.obs["Qh"]) * 1.5 + 10.0, np.ones(n, bool)
    assert observed_daily(f, "Qle", "observed")[2] == "Qle"
    assert observed_daily(f, "Qle", "corrected")[2] == "Qle_cor"
    assert observed_daily(f, "Qle", "closed")[2] == "Qle_cor"  # PLUMBER2's own correction first
    assert observed_daily(f, "Qle", "bowen")[2] == "Qle_closed"
    assert observed_daily(f, "Qh", "closed")[2] == "Qh_closed"  # no Qh_cor: the Bowen closure
    assert observed_daily(f, "NEE", "bowen")[2] == "NEE"
    tg = site_targets(f, ["Qle", "Qh"], np.ones(n, bool), corrected="bowen")
    assert float(tg.obs["Qh"].mean()) > float(np.nanmean(f.obs["Qh"]))


def test_credibility_counts_wins_nee_kept_and_moved_parameters_on_bounds():
    from mdpl.evaluate.credibility import credibility

    rec = []
    for s, (qle, qh, nee) in {"A": (8.0, 9.0, 1.05), "B": (8.0, 12.0, 1.5)}.items():
        for src, (a, b, c) in {"default": (10.0, 10.0, 1.0), "mdpl": (qle, qh, nee)}.items():
            for flux, v in zip(("Qle", "Qh", "NEE"), (a, b, c)):
                rec.append({"site": s, "flux": flux, "period": "test", "scale": "daily", "source": src, "rmse": v})
    space = Space4()
    space.to_unit = lambda x: (np.asarray(x, float) - space.lower) / (space.upper - space.lower)
    d = space.defaults("GRA")
    params = pd.DataFrame([{"site": s, "source": src, "a [1]": a, "b [m2 m-2]": d[1], "c [1]": c, "r [umol m-2 s-1]": d[3]}
                           for s, src, a, c in [("A", "default", d[0], d[2]), ("A", "mdpl", 0.6, 0.8),
                                                ("B", "default", d[0], d[2]), ("B", "mdpl", 0.3, d[2])]])
    row = credibility(pd.DataFrame(rec), params, space).iloc[0]
    assert row.source == "mdpl" and row.both_better == 1 and row.sites == 2
    assert row.nee_kept == 1  # A: +5 % is kept, B: +50 % is not
    assert row.mean_rmse_change_pct == pytest.approx((-20 - 10 - 20 + 20) / 4)
    assert row.at_bound_per_site == pytest.approx(1.0)  # A moved a and c onto their upper bounds; B moved a inside
    assert row.moved_per_site == pytest.approx(1.5)


def test_sensitivity_grid_draws_the_indices_it_is_given():
    import matplotlib

    matplotlib.use("Agg")
    from mdpl.plots import sensitivity_grid

    f = site()
    si = sobol_screen(Surrogate4(), [f], [np.ones(f.n_days, bool)], n_base=64)
    si["calibrated"] = si.parameter != "r"
    fig, axes = sensitivity_grid(si, threshold=0.05)
    assert [a.get_title() for a in axes[0]] == ["Qle", "Qh", "NEE"]
    img = axes[0][2].images[0].get_array()
    want = si[si.flux == "NEE"].set_index("parameter").ST.reindex(Space4.names).to_numpy()
    np.testing.assert_allclose(np.asarray(img)[:, 0], want)
    with pytest.raises(ValueError, match="no indices"):
        sensitivity_grid(si, fluxes=("GPP",))


def test_dpl_surrogate_is_matched_to_the_multitask_weight_count():
    from mdpl.calibrate.surrogate_training import _hyper_from_cfg
    from mdpl.config import SurrogateConfig
    from mdpl.models.surrogate import build_surrogate

    cfg = SurrogateConfig()
    n = dict(n_forcing=12, n_params=11, n_static=13)
    counts = {k: sum(p.numel() for p in build_surrogate(k, tasks=cfg.tasks, **_hyper_from_cfg(cfg, k, *n.values())).parameters())
              for k in ("multitask", "singletask")}
    assert abs(counts["singletask"] - counts["multitask"]) / counts["multitask"] < 0.05
    cfg.singletask_hidden_size = 8  # an explicit width is kept
    assert _hyper_from_cfg(cfg, "singletask", *n.values())["hidden_size"] == 8


def test_structure_fixes_respiration_unless_nee_is_a_target():
    from mdpl.ils.parameters import PARAMETER_SPACE

    assert PARAMETER_SPACE.reaches == {"resp_base": ("NEE",), "q10": ("NEE",)}
    names = PARAMETER_SPACE.names
    # a surrogate's noise gives q10 a total index above the threshold: the structure still fixes it
    si = pd.DataFrame([{"site": "A", "flux": "Qle", "parameter": n, "ST": 0.3} for n in names])
    m = free_mask(si, ["A"], names, ["Qle", "Qh"], 0.05, PARAMETER_SPACE.reaches)
    assert {n for n, k in zip(names, m[0]) if not k} == {"resp_base", "q10"}
    assert free_mask(si, ["A"], names, ["Qle", "NEE"], 0.05, PARAMETER_SPACE.reaches).all()


def test_screen_needs_only_the_days_up_to_the_last_training_day():
    f = site()
    train = np.zeros(f.n_days, bool)
    train[:100] = True
    seen = []

    class Spy(Surrogate4):
        def predict(self, g, params):
            seen.append(g.n_days)
            return super().predict(g, params)

    a = sobol_screen(Spy(), [f], [train], n_base=32)
    assert set(seen) == {100} and len(a) == 3 * 4


def test_gap_warnings_name_calibrated_fluxes_whose_surrogate_strays_from_the_model():
    from mdpl.calibrate.gaps import gap_warnings

    f = site()
    sd = float(np.std(f.obs["Qle"]))
    gap = [{"site": "A", "source": "mdpl", "surrogate": "multitask", "flux": "Qle", "rmse": 0.6 * sd},
           {"site": "A", "source": "mdpl", "surrogate": "multitask", "flux": "Qh", "rmse": 0.01},
           {"site": "A", "source": "mdpl", "surrogate": "multitask", "flux": "NEE", "rmse": 1e3}]
    w = gap_warnings(gap, [f], 0.5)
    assert len(w) == 1 and "Qle" in w[0] and "0.60 x the observed std" in w[0]
    assert gap_warnings(gap, [f], 0.7) == []


def test_a_trust_region_moves_the_walls_in_and_credibility_counts_its_edge():
    from mdpl.evaluate.credibility import credibility

    space = Space4()
    space.to_unit = lambda x: (np.asarray(x, float) - space.lower) / (space.upper - space.lower)
    d = space.defaults("GRA")
    rec = [{"site": "A", "flux": f, "period": "test", "scale": "daily", "source": s, "rmse": 1.0}
           for f in ("Qle", "Qh", "NEE") for s in ("default", "mdpl")]
    edge = d[0] + 0.3 * (space.upper[0] - space.lower[0])  # a moved exactly to the trust-region edge
    params = pd.DataFrame([{"site": "A", "source": "default", "a": d[0], "b": d[1], "c": d[2], "r": d[3]},
                           {"site": "A", "source": "mdpl", "a": edge, "b": d[1], "c": d[2], "r": d[3]}])
    row = credibility(pd.DataFrame(rec), params, space, trust_radius=0.3).iloc[0]
    assert row.at_bound_per_site == 0 and row.at_trust_edge_per_site == 1
    assert "at_trust_edge_per_site" not in credibility(pd.DataFrame(rec), params, space).columns


def test_a_flux_without_measured_training_days_gets_no_index_instead_of_an_error():
    f = site()
    f.obs_mask["NEE"] = np.zeros(f.n_days, bool)  # a twin or a site without NEE observations
    si = sobol_screen(Surrogate4(), [f], [np.ones(f.n_days, bool)], n_base=32)
    assert set(si.flux) == {"Qle", "Qh"}


# -- the evaporative-fraction + available-energy basis (calibration.target_basis: ef) ---------------------------
def gap_site(gap=0.7, rnet=True, seed=0):
    """A site whose tower sees only ``gap`` of the true turbulent fluxes (a constant closure gap); the radiometer
    sees the true available energy (Rnet - Qg, with Qg = 5 W m-2) when ``rnet``."""
    f = site(seed=seed)
    truth = {k: f.obs[k].astype(float).copy() for k in ("Qle", "Qh")}
    for k in ("Qle", "Qh"):
        f.obs[k] = (gap * truth[k]).astype(np.float32)
    if rnet:
        f.obs["Qg"], f.obs_mask["Qg"] = np.full(f.n_days, 5.0, np.float32), np.ones(f.n_days, bool)
        f.obs["Rnet"], f.obs_mask["Rnet"] = (truth["Qle"] + truth["Qh"] + 5.0).astype(np.float32), np.ones(f.n_days, bool)
    return f, {k: torch.as_tensor(v, dtype=torch.float64) for k, v in truth.items()}


def test_ef_loss_is_zero_at_the_truth_and_blind_to_a_constant_gap():
    from mdpl.calibrate.targets import multitask_loss, task_terms

    f, truth = gap_site()
    w = {"Qle": 1.0, "Qh": 1.0}
    tg = site_targets(f, ["Qle", "Qh"], np.ones(f.n_days, bool), corrected="ef", dtype=torch.float64)
    assert tg.basis == "ef" and set(tg.obs) == {"EF", "AE"}
    loss, parts = multitask_loss(truth, tg, w)
    assert float(loss) == pytest.approx(0.0, abs=1e-10) and set(parts) == {"EF", "AE"}
    # the observed basis fits the gap: the truth is far from its optimum
    obs_loss, _ = multitask_loss(truth, site_targets(f, ["Qle", "Qh"], np.ones(f.n_days, bool)), w)
    assert float(obs_loss) > 0.1
    # without Rnet the available energy falls back to the observed Qle + Qh (noted): EF still ignores the gap
    f2, truth2 = gap_site(rnet=False)
    tg2 = site_targets(f2, ["Qle", "Qh"], np.ones(f2.n_days, bool), corrected="ef", dtype=torch.float64)
    terms = task_terms(truth2, tg2, w)
    assert float(terms["EF"]) == pytest.approx(0.0, abs=1e-10) and float(terms["AE"]) > 0.1
    assert any("fewer than half" in n for n in tg2.notes)
    # a wrong partition of the right energy is seen by EF only
    shifted = {"Qle": truth["Qle"] + 10.0, "Qh": truth["Qh"] - 10.0}
    t3 = task_terms(shifted, tg, w)
    assert float(t3["EF"]) > 0.1 and float(t3["AE"]) == pytest.approx(0.0, abs=1e-10)


def test_ef_loss_is_finite_and_differentiable_and_skips_days_without_a_defined_ef():
    from mdpl.calibrate.targets import EF_MIN_ENERGY_W_M2, multitask_loss, task_terms, term_weights

    f, truth = gap_site()
    low = np.arange(0, f.n_days, 7)  # calm days: observed Qle + Qh below the threshold
    for k in ("Qle", "Qh"):
        f.obs[k][low] = 4.0
    tg = site_targets(f, ["Qle", "Qh"], np.ones(f.n_days, bool), corrected="ef", dtype=torch.float64)
    turb = f.obs["Qle"].astype(float) + f.obs["Qh"].astype(float)
    assert not tg.mask["EF"].numpy()[low].any() and 2 * 4.0 <= EF_MIN_ENERGY_W_M2
    np.testing.assert_array_equal(tg.mask["EF"].numpy(), turb > EF_MIN_ENERGY_W_M2)
    # a simulation with zero and negative turbulent energy on some days: finite loss, finite non-zero gradients
    qle = (truth["Qle"] * 0.8).clone()
    qh = truth["Qh"].clone()
    qle[3], qh[3] = 0.0, 0.0
    qle[10], qh[10] = 5.0, -30.0
    qle.requires_grad_(True)
    qh.requires_grad_(True)
    loss, _ = multitask_loss({"Qle": qle, "Qh": qh}, tg, {"Qle": 1.0, "Qh": 1.0})
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    assert torch.isfinite(qle.grad).all() and torch.isfinite(qh.grad).all() and qle.grad.abs().sum() > 0
    # the gradient is the loss's: a central finite difference on one day agrees
    d = 20
    eps = 1e-4

    def at(v):
        q = qle.detach().clone()
        q[d] = v
        return float(multitask_loss({"Qle": q, "Qh": qh.detach()}, tg, {"Qle": 1.0, "Qh": 1.0})[0])

    q0 = float(qle.detach()[d])
    fd = (at(q0 + eps) - at(q0 - eps)) / (2 * eps)
    assert float(qle.grad[d]) == pytest.approx(fd, rel=1e-4)
    # what the model does on a day without a defined EF does not reach the EF term
    q2 = truth["Qle"].clone()
    q2[low] += 50.0
    assert float(task_terms({"Qle": q2, "Qh": truth["Qh"]}, tg, {"Qle": 1, "Qh": 1})["EF"]) == pytest.approx(0.0, abs=1e-10)
    # weights: EF and AE carry the mean of the Qle and Qh weights; NEE stays its own term
    tg3 = site_targets(f, ["Qle", "Qh", "NEE"], np.ones(f.n_days, bool), corrected="ef")
    assert term_weights(tg3, {"Qle": 1.0, "Qh": 3.0, "NEE": 0.5}) == {"EF": 2.0, "AE": 2.0, "NEE": 0.5}


def test_ef_basis_needs_both_energy_fluxes_and_is_a_valid_config_value():
    from mdpl.config import validate
    from mdpl.errors import ConfigError

    f, _ = gap_site()
    with pytest.raises(ConfigError, match="needs both Qle and Qh"):
        site_targets(f, ["Qle"], np.ones(f.n_days, bool), corrected="ef")
    cfg = Config()
    cfg.calibration.target_basis = "ef"
    validate(cfg)
    cfg.calibration.target_basis = "evap"
    with pytest.raises(ConfigError, match="ef"):
        validate(cfg)
    # per-flux series (window choice, screen, scores) stay the observed ones on the ef basis
    assert observed_daily(f, "Qle", "ef")[2] == "Qle"


def test_ef_basis_recovers_the_truth_through_a_closure_gap_where_the_observed_basis_cannot():
    from mdpl.calibrate.selection import training_loss

    f, truth = gap_site()
    fits = {}
    for basis in ("ef", "observed"):
        cfg = _cfg()
        cfg.calibration.target_basis = basis
        fits[basis] = calibrate_mdpl(Surrogate4(), [f], cfg, progress=False).params[0]
    np.testing.assert_allclose(fits["ef"][:3], TRUTH[:3], rtol=0.1)
    assert abs(fits["observed"][0] / TRUTH[0] - 1.0) > 0.2  # the light-use parameter absorbs the gap
    # the land-model check judges on the same loss: the truth beats the observed basis's fit there
    days = pd.DatetimeIndex(f.days)
    sims = {k: pd.DataFrame({t: Surrogate4().predict(f, torch.as_tensor(p, dtype=torch.float64)[None, :])[t][0].numpy()
                             for t in ("Qle", "Qh")}, index=days) for k, p in {"truth": TRUTH, **fits}.items()}
    w = {"Qle": 1.0, "Qh": 1.0}
    train = np.ones(f.n_days, bool)
    assert training_loss(f, sims["truth"], train, w, "ef") < training_loss(f, sims["observed"], train, w, "ef")
    assert training_loss(f, sims["truth"], train, w, "observed") > training_loss(f, sims["observed"], train, w, "observed")
