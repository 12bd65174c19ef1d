"""Surrogate training on a tiny toy-model ensemble: accuracy, normalisation, persistence, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdpl.calibrate.fidelity import fidelity_report
from mdpl.calibrate.surrogate_training import TrainedSurrogate, split_members, train_surrogate
from mdpl.config import SurrogateConfig
from mdpl.data.synthetic import site_twin
from mdpl.ensemble import run_ensemble
from mdpl.ensemble.toy import ToyBucketModel, toy_space
from mdpl.errors import ConfigError, ModelError

SITES = ["DK-Fou", "ES-ES2", "ZA-Kru"]
CFG = dict(hidden_size=16, state_size=8, window_days=120, warmup_days=30, batch_size=24, tasks=["Qle", "Qh"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    sites = [site_twin(s, years=0.5, seed=2) for s in SITES]
    return run_ensemble(sites, ToyBucketModel(), toy_space(), 24, tmp_path_factory.mktemp("tiny") / "ens",
                        batch_size=24, progress=False)


@pytest.fixture(scope="module")
def trained(store):
    torch.set_num_threads(1)
    return train_surrogate(store, SurrogateConfig(epochs=60, **CFG), seed=0, progress=False)


def test_learns_the_toy_model_on_heldout_parameters(store, trained):
    """Stated accuracy on parameter sets never seen in training: pooled daily R^2 >= 0.8 (Qle), 0.9 (Qh)."""
    rep = fidelity_report(trained, store)
    pooled = rep[rep.site == "ALL"].set_index("flux")
    assert (rep.scope == "heldout_params").all()
    assert pooled.loc["Qle", "r2"] >= 0.8, pooled
    assert pooled.loc["Qh", "r2"] >= 0.9, pooled
    h = trained.history
    assert h[-1]["train_loss"] < 0.5 * h[0]["train_loss"]
    assert trained.info["best_epoch"] == int(np.argmin([e["val_loss"] for e in h]))


def test_split_is_disjoint_and_seeded(store, trained):
    for s in SITES:
        parts = trained.split[s]
        allm = parts["train"] + parts["val"] + parts["test"]
        assert sorted(allm) == list(range(24)) and len(set(allm)) == 24
        assert len(parts["test"]) == len(parts["val"]) == 4
    assert split_members(24, SITES, 0.15, 0.15, 0) == trained.split
    assert split_members(24, SITES, 0.15, 0.15, 1) != trained.split


def test_normalisation_from_training_members_only(store, trained):
    for j, t in enumerate(trained.tasks):
        vals = np.concatenate([store.member_series(s, t)[trained.split[s]["train"]].ravel() for s in SITES])
        assert trained.norm.target_mean[j] == pytest.approx(np.mean(vals), rel=1e-6)
        assert trained.norm.target_std[j] == pytest.approx(np.std(vals), rel=1e-6)
    forc = np.concatenate([store.features[s].forcing for s in SITES])
    np.testing.assert_allclose(trained.norm.forcing_mean, forc.mean(0), rtol=1e-5)


def test_save_load_gives_identical_predictions(store, trained, tmp_path):
    trained.save(tmp_path / "sur")
    back = TrainedSurrogate.load(tmp_path / "sur")
    f = store.features["ZA-Kru"]
    theta = torch.as_tensor(store.params[2, :5])
    a, b = trained.predict(f, theta), back.predict(f, theta)
    for t in trained.tasks:
        torch.testing.assert_close(a[t], b[t], rtol=0, atol=0)
    assert back.kind == trained.kind and back.tasks == trained.tasks
    assert back.history == trained.history and back.split == trained.split
    np.testing.assert_allclose(back.space.lower, store.space.lower)
    assert back.norm == trained.norm


def test_predict_physical_units_and_gradients(store, trained):
    f = store.features["DK-Fou"]
    theta = torch.as_tensor(store.params[0, :3]).clone().requires_grad_(True)
    trained.freeze()
    out = trained.predict(f, theta)
    assert out["Qle"].shape == (3, f.n_days)
    # physical units: the same order of magnitude as the land model (W m-2)
    lm = store.member_series("DK-Fou", "Qh")[:3]
    assert abs(float(out["Qh"].detach().mean()) - float(lm.mean())) < 0.5 * float(lm.std())
    out["Qle"].sum().backward()
    assert theta.grad is not None and torch.isfinite(theta.grad).all() and theta.grad.abs().sum() > 0
    assert all(p.grad is None for p in trained.parameters())


def test_predict_several_sites_pads_shorter(store, trained, tmp_path):
    feats = [store.features[s] for s in SITES]
    theta = torch.as_tensor(np.stack([store.params[i, 0] for i in range(3)]))
    out = trained.predict(feats, theta)["Qh"]
    n_max = max(f.n_days for f in feats)
    assert out.shape == (3, n_max)
    for i, f in enumerate(feats):
        one = trained.predict(f, theta[i : i + 1])["Qh"][0]
        torch.testing.assert_close(out[i, : f.n_days], one)
        assert torch.isnan(out[i, f.n_days :]).all()
    with pytest.raises(ModelError, match="do not split evenly"):
        trained.predict(feats, theta[:2])
    with pytest.raises(ModelError, match="expects 4 parameters"):
        trained.predict(feats[0], theta[:, :3])


def test_same_seed_same_weights_and_single_task(store):
    cfg = SurrogateConfig(epochs=2, **CFG)
    a = train_surrogate(store, cfg, kind="singletask", seed=3, progress=False)
    b = train_surrogate(store, cfg, kind="singletask", seed=3, progress=False)
    assert a.kind == "singletask" and len(a.history) == 2
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_unknown_task_is_a_config_error(store):
    with pytest.raises(ConfigError, match="GPP"):
        train_surrogate(store, SurrogateConfig(epochs=1, tasks=["Qle", "GPP"]), progress=False)
