"""MdPL/dPL calibration on a tiny known problem: an analytic 'surrogate' whose true parameters are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mdpl.calibrate.surrogate_route import calibrate_mdpl
from mdpl.calibrate.targets import multitask_loss, site_targets
from mdpl.config import Config
from mdpl.data.features import FORCING_FEATURES, STATIC_FEATURES, SiteFeatures
from mdpl.errors import ConfigError, DataError


class ToySpace:
    """Three parameters: light-use slope a, LAI half-saturation b (log scale), sensible fraction c."""

    names = ["a", "b", "c"]
    units = ["1", "m2 m-2", "1"]
    lower = np.array([0.05, 0.1, 0.1])
    upper = np.array([0.6, 5.0, 0.8])
    log = np.array([False, True, False])

    def defaults(self, igbp):
        return np.array([0.2, 0.5, 0.3]) if igbp == "GRA" else np.array([0.4, 3.0, 0.6])


class AnalyticSurrogate:
    """Qle = a SW LAI/(LAI+b); Qh = c SW - 0.3 Qle (W m-2), differentiable in (a, b, c)."""

    kind = "multitask"
    tasks = ["Qle", "Qh"]
    space = ToySpace()

    def predict(self, f, params):
        sw = torch.as_tensor(f.forcing_var("SWdown"), dtype=torch.float32)[None, :]
        lai = torch.as_tensor(f.forcing_var("LAI"), dtype=torch.float32)[None, :]
        a, b, c = params[:, 0:1], params[:, 1:2], params[:, 2:3]
        qle = a * sw * lai / (lai + b)
        return {"Qle": qle, "Qh": c * sw - 0.3 * qle}


def toy_site(name, igbp, group, truth, days=240, seed=0, noise=1.0):
    rng = np.random.default_rng(seed)
    d = pd.date_range("2005-01-01", periods=days, freq="D")
    forcing = np.ones((days, len(FORCING_FEATURES)), np.float32)
    t = np.arange(days)
    sw = 150 + 100 * np.sin(2 * np.pi * t / 365) + 40 * rng.standard_normal(days)
    lai = 1.5 + 1.2 * np.sin(2 * np.pi * (t - 30) / 365) + 0.2 * rng.standard_normal(days)
    forcing[:, FORCING_FEATURES.index("SWdown")] = np.clip(sw, 5, None)
    forcing[:, FORCING_FEATURES.index("LAI")] = np.clip(lai, 0.1, None)
    static = rng.standard_normal(len(STATIC_FEATURES)).astype(np.float32)
    f = SiteFeatures(name, igbp, group, d, forcing, d.day_of_year.to_numpy(), static, {}, {})
    true = AnalyticSurrogate().predict(f, torch.as_tensor(np.asarray(truth, np.float32))[None, :])
    for k in ("Qle", "Qh"):
        v = true[k][0].numpy() + noise * rng.standard_normal(days)
        m = rng.random(days) > 0.2  # 20 % of days unmeasured
        v[~m] = np.where(rng.random((~m).sum()) > 0.5, np.nan, 1e4)  # gap-filled junk must be ignored
        f.obs[k], f.obs_mask[k] = v.astype(np.float32), m
    f.obs["NEE"], f.obs_mask["NEE"] = np.full(days, np.nan, np.float32), np.zeros(days, bool)
    return f


TRUTH = {"A": [0.45, 1.2, 0.35], "B": [0.3, 2.0, 0.55]}


def _cfg(mode="site", epochs=300, seed=0):
    cfg = Config(seed=seed)
    cfg.calibration.mode = mode
    cfg.calibration.epochs = epochs
    cfg.calibration.quick_epochs = epochs
    cfg.calibration.learning_rate = 3e-2
    return cfg


def test_site_mode_recovers_known_parameters_at_two_sites():
    sites = [toy_site("A", "GRA", "grassland", TRUTH["A"], seed=1), toy_site("B", "CRO", "cultivation", TRUTH["B"], seed=2)]
    res = calibrate_mdpl(AnalyticSurrogate(), sites, _cfg(), progress=False)
    assert res.source == "mdpl" and res.sites == ["A", "B"]
    for i, s in enumerate("AB"):
        np.testing.assert_allclose(res.params[i], TRUTH[s], rtol=0.1)
    assert res.info["best_loss"] < 0.1 * res.info["initial_loss"]
    assert np.all(res.params >= ToySpace.lower) and np.all(res.params <= ToySpace.upper)


def test_pft_mode_gives_one_parameter_set_per_group():
    truth = TRUTH["A"]
    sites = [toy_site(n, "GRA", "grassland", truth, seed=k) for k, n in enumerate("PQ")] + [
        toy_site("R", "CRO", "cultivation", TRUTH["B"], seed=7)
    ]
    res = calibrate_mdpl(AnalyticSurrogate(), sites, _cfg("pft"), progress=False)
    np.testing.assert_allclose(res.params[0], res.params[1], rtol=1e-6)
    np.testing.assert_allclose(res.params[0], truth, rtol=0.1)
    np.testing.assert_allclose(res.params[2], TRUTH["B"], rtol=0.1)


def test_same_seed_same_parameters_and_single_task_source():
    sites = [toy_site("A", "GRA", "grassland", TRUTH["A"], seed=1)]
    sur = AnalyticSurrogate()
    r1 = calibrate_mdpl(sur, sites, _cfg("all", epochs=40, seed=3), progress=False)
    r2 = calibrate_mdpl(sur, sites, _cfg("all", epochs=40, seed=3), progress=False)
    np.testing.assert_array_equal(r1.params, r2.params)
    single = AnalyticSurrogate()
    single.kind = "singletask"
    assert calibrate_mdpl(single, sites, _cfg(epochs=2), progress=False).source == "dpl"


def test_loss_is_variance_normalised_and_ignores_unmeasured_days():
    f = toy_site("A", "GRA", "grassland", TRUTH["A"], noise=0.0)
    tg = site_targets(f, ["Qle", "Qh"], np.ones(f.n_days, bool))
    # predicting the observed mean everywhere costs exactly 1 per task
    sim = {k: torch.where(tg.mask[k], torch.full_like(tg.obs[k], float(tg.obs[k][tg.mask[k]].mean())), tg.obs[k]) for k in tg.obs}
    loss, parts = multitask_loss(sim, tg, {"Qle": 1.0, "Qh": 2.0})
    assert parts["Qle"] == pytest.approx(1.0, rel=1e-4) and parts["Qh"] == pytest.approx(1.0, rel=1e-4)
    assert float(loss) == pytest.approx(3.0, rel=1e-4)


def test_corrected_fluxes_fall_back_with_a_note_and_bad_weights_are_config_errors():
    f = toy_site("A", "GRA", "grassland", TRUTH["A"])
    tg = site_targets(f, ["Qle"], np.ones(f.n_days, bool), corrected=True)
    assert any("uncorrected" in n for n in tg.notes)
    cfg = _cfg()
    cfg.calibration.task_weights = {"LE": 1.0}
    with pytest.raises(ConfigError, match="task_weights"):
        calibrate_mdpl(AnalyticSurrogate(), [f], cfg, progress=False)
    f.obs_mask["Qh"][:] = False
    with pytest.raises(DataError, match="site A"):
        site_targets(f, ["Qh"], np.ones(f.n_days, bool))


def test_prior_weight_holds_unconstrained_parameters_at_their_defaults():
    """Calibrating Qle alone leaves c (a Qh-only parameter) free: the prior term keeps it at the GRA default 0.3,
    while a and b still fit Qle; a very large weight pins every parameter to its default."""
    site = toy_site("A", "GRA", "grassland", TRUTH["A"], seed=1)
    cfg = _cfg()
    cfg.calibration.task_weights = {"Qle": 1.0}
    cfg.calibration.prior_weight = 0.05
    res = calibrate_mdpl(AnalyticSurrogate(), [site], cfg, progress=False)
    assert abs(res.params[0, 2] - 0.3) < 0.02
    assert res.info["best_loss"] < 0.2 * res.info["initial_loss"]
    assert res.history[-1]["loss_prior"] > 0
    cfg.calibration.prior_weight = 1e4
    pinned = calibrate_mdpl(AnalyticSurrogate(), [site], cfg, progress=False)
    np.testing.assert_allclose(pinned.params[0], [0.2, 0.5, 0.3], rtol=0.05)


def test_no_worse_weight_stops_trading_one_flux_for_another():
    """One parameter a drives both fluxes (Qle = a SW, Qh = a SW / 2); the observations want a = 0.4 for Qle and
    a = 0.1 (the prior) for Qh. The plain multi-task sum moves a towards Qle and makes Qh worse than at the prior;
    with the no-worse term, Qh's error stays at (or below) its prior value."""
    from types import SimpleNamespace

    from mdpl.calibrate.generator_training import build_generators, train_generators
    from mdpl.calibrate.targets import SiteTargets, task_terms

    space = SimpleNamespace(lower=np.array([0.01]), upper=np.array([1.0]), log=np.array([False]))
    rng = np.random.default_rng(0)
    sw = torch.as_tensor(150 + 80 * rng.random(200), dtype=torch.float32)
    noise = torch.as_tensor(3.0 * rng.standard_normal(200), dtype=torch.float32)
    obs = {"Qle": 0.4 * sw, "Qh": 0.05 * sw + noise}
    tgt = SiteTargets("A", obs, {k: torch.ones(200, dtype=torch.bool) for k in obs}, {k: float(v.var()) for k, v in obs.items()})
    w = {"Qle": 1.0, "Qh": 1.0}

    def simulate(theta):
        return [{"Qle": theta[0, 0] * sw, "Qh": 0.5 * theta[0, 0] * sw}]

    prior = np.array([[0.1]])
    at_prior = float(task_terms(simulate(torch.tensor(prior, dtype=torch.float32))[0], tgt, w)["Qh"])
    fits = {}
    for weight in (0.0, 100.0):
        torch.manual_seed(0)
        gens = build_generators(1, np.zeros((1, 2)), space, mode="site", hidden=8)
        fit = train_generators(gens, np.zeros((1, 2)), prior, simulate, [tgt], w, epochs=200, learning_rate=3e-2,
                               progress=False, no_worse_weight=weight)
        fits[weight] = float(task_terms(simulate(torch.tensor(fit.params, dtype=torch.float32))[0], tgt, w)["Qh"])
    assert fits[0.0] > 2 * at_prior  # the plain sum sacrifices Qh
    assert fits[100.0] - at_prior < 0.05 * (fits[0.0] - at_prior)  # the guarded one (almost) does not
