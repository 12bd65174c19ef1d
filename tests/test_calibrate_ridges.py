"""Equifinality: a ridge the targets cannot resolve but NEE can is held on its NEE-heavier side.

Toy with the embedded model's structure: Qle ~ stomatal slope m x assimilation
(Vcmax-like v), so only their sum on the unit cube reaches Qle, while NEE sees
v alone; c moves Qh; p and q are a second ridge that NEE sees in the same
combination (moving along it changes nothing anyone measures, so nothing is
held there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mdpl.calibrate.identifiability import held_by_site, ridge_holds, ridge_pairs
from mdpl.calibrate.sensitivity import _cube
from mdpl.calibrate.surrogate_route import calibrate_mdpl
from mdpl.config import Config, ConfigError
from mdpl.data.features import FORCING_FEATURES, STATIC_FEATURES, SiteFeatures


class SpaceR:
    names = ["v", "m", "c", "p", "q"]
    units = ["1"] * 5
    lower = np.zeros(5) + 1e-3
    upper = np.ones(5)
    log = np.zeros(5, bool)

    def defaults(self, igbp):
        return np.array([0.5, 0.3, 0.4, 0.5, 0.5])


class RidgeToy:
    """Qle = SW (v + m)/2 + 30 L (p + q); Qh = c SW - 0.3 Qle; NEE = 2 - 0.02 SW v - 3 L (p + q), L = LAI - 2."""

    kind = "multitask"
    tasks = ["Qle", "Qh", "NEE"]
    space = SpaceR()

    def predict(self, f, params):
        sw = torch.as_tensor(f.forcing_var("SWdown"), dtype=params.dtype)[None, :]
        v, m, c, p, q = (params[:, k : k + 1] for k in range(5))
        lai = torch.as_tensor(f.forcing_var("LAI"), dtype=params.dtype)[None, :] - 2.0
        qle = sw * (v + m) / 2 + 30.0 * lai * (p + q)
        return {"Qle": qle, "Qh": c * sw - 0.3 * qle, "NEE": 2.0 - 0.02 * sw * v - 3.0 * lai * (p + q)}


TRUTH = np.array([0.5, 0.7, 0.3, 0.5, 0.5])  # v at its default, so NEE at the defaults is right


def site(name="A", seed=0, days=200):
    rng = np.random.default_rng(seed)
    d = pd.date_range("2005-01-01", periods=days, freq="D")
    forcing = np.ones((days, len(FORCING_FEATURES)), np.float32)
    t = np.arange(days)
    forcing[:, FORCING_FEATURES.index("SWdown")] = np.clip(
        150 + 100 * np.sin(2 * np.pi * t / 365) + 60 * rng.standard_normal(days), 5, None)
    forcing[:, FORCING_FEATURES.index("LAI")] = 2.0 + rng.standard_normal(days)
    f = SiteFeatures(name, "GRA", "grassland", d, forcing, d.day_of_year.to_numpy(),
                     rng.standard_normal(len(STATIC_FEATURES)).astype(np.float32), {}, {})
    true = RidgeToy().predict(f, torch.as_tensor(TRUTH, dtype=torch.float64)[None, :])
    for k in ("Qle", "Qh", "NEE"):
        f.obs[k] = (true[k][0].numpy() + 0.5 * rng.standard_normal(days)).astype(np.float32)
        f.obs_mask[k] = np.ones(days, bool)
    return f


class ToyStore:
    """The attributes of :class:`mdpl.ensemble.store.EnsembleStore` the screens read, filled by running the toy."""

    def __init__(self, feats, n_members=96, seed=0):
        self.space = SpaceR()
        self.sites = [str(f.site) for f in feats]
        u = np.random.default_rng(seed).random((len(feats), n_members, 5))
        self.params = np.asarray(_cube(self.space).from_unit(u), float)
        self.done = np.ones((len(feats), n_members), bool)
        self.n_days = np.array([f.n_days for f in feats])
        self.features = {}
        toy = RidgeToy()
        out = [toy.predict(f, torch.as_tensor(self.params[i])) for i, f in enumerate(feats)]
        self.daily = {k: np.stack([o[k].numpy() for o in out]) for k in ("Qle", "Qh", "NEE")}

    def site_index(self, s):
        return self.sites.index(s)


def test_ridge_pairs_hold_the_side_that_moves_the_uncalibrated_flux():
    t = np.linspace(0, 6, 50)
    s, r = np.sin(3 * t), np.cos(5 * t) + 0.1
    a = np.stack([s, s, np.cos(t), r, 0.99 * r])
    c = np.stack([s, np.zeros(50), np.zeros(50), r, r])
    pairs = ridge_pairs(a, c, SpaceR.names, np.ones(5, bool))
    got = {frozenset((r["held"], r["kept"])): r for r in pairs}
    assert set(got) == {frozenset("vm"), frozenset("pq")}  # c is on no ridge
    assert got[frozenset("vm")]["hold"] and got[frozenset("vm")]["held"] == "v"
    assert not got[frozenset("pq")]["hold"]  # p and q move NEE in the same combination as Qle
    # a parameter already fixed by another screen forms no ridge
    fixed = ridge_pairs(a, c, SpaceR.names, np.array([True, False, True, True, True]))
    assert [frozenset((r["held"], r["kept"])) for r in fixed] == [frozenset("pq")]


def test_ridge_holds_finds_the_assimilation_slope_ridge_in_an_ensemble():
    feats = [site("A", 0), site("B", 1)]
    store = ToyStore(feats)
    train = [np.ones(f.n_days, bool) for f in feats]
    free, table = ridge_holds(store, feats, train, ["Qle", "Qh"], np.ones((2, 5), bool))
    assert free.tolist() == [[False, True, True, True, True]] * 2, table
    held = table[table.hold]
    assert sorted(held.site) == ["A", "B"] and set(held.held) == {"v"} and set(held.kept) == {"m"}
    assert (held.cosine > 0.99).all()
    assert [k for k in held_by_site(table)] == ["A", "B"] and held_by_site(table)["A"][0].startswith("v (carried by m")
    # NEE as a target: nothing is uncalibrated, so the ridge is resolved by the data and nothing is held
    free, table = ridge_holds(store, feats, train, ["Qle", "Qh", "NEE"], np.ones((2, 5), bool))
    assert free.all() and table.empty


def test_holding_the_ridge_keeps_nee_where_a_free_generator_loses_it():
    feats = [site("A", 0)]
    store = ToyStore(feats)
    train = [np.ones(feats[0].n_days, bool)]
    cfg = Config(seed=0)
    cfg.calibration.mode = "site"
    cfg.calibration.quick_epochs = 300
    cfg.calibration.learning_rate = 3e-2
    cfg.calibration.screen = False
    cfg.calibration.select = "surrogate"
    allowed, _ = ridge_holds(store, feats, train, ["Qle", "Qh"], np.ones((1, 5), bool))
    toy = RidgeToy()

    def nee_rmse(params):
        p = toy.predict(feats[0], torch.as_tensor(params, dtype=torch.float64))["NEE"][0].numpy()
        return float(np.sqrt(np.mean((p - feats[0].obs["NEE"]) ** 2)))

    def qle_rmse(params):
        p = toy.predict(feats[0], torch.as_tensor(params, dtype=torch.float64))["Qle"][0].numpy()
        return float(np.sqrt(np.mean((p - feats[0].obs["Qle"]) ** 2)))

    free_run = calibrate_mdpl(toy, feats, cfg, train_masks=train, progress=False)
    held_run = calibrate_mdpl(toy, feats, cfg, train_masks=train, allowed=allowed, progress=False)
    default = SpaceR().defaults("GRA")[None, :]
    assert held_run.params[0, 0] == default[0, 0]  # v exactly at its prior
    # both fit Qle (the ridge is flat for it), but only the held run keeps NEE at the defaults' error
    assert qle_rmse(free_run.params) < 0.3 * qle_rmse(default) and qle_rmse(held_run.params) < 0.3 * qle_rmse(default)
    assert nee_rmse(held_run.params) <= 1.1 * nee_rmse(default)
    assert nee_rmse(free_run.params) > 1.5 * nee_rmse(default)


def test_ridge_settings_are_checked():
    import pytest

    from mdpl.config import validate

    cfg = Config()
    cfg.calibration.ridge_cosine = 1.5
    with pytest.raises(ConfigError, match="ridge_cosine"):
        validate(cfg)
