"""Surrogate refinement: after one round around a corner of the box, the surrogate is closer to the model there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdpl.calibrate.refine import parameter_cloud, refine_round
from mdpl.calibrate.surrogate_training import train_surrogate
from mdpl.config import SurrogateConfig
from mdpl.data.synthetic import site_twin
from mdpl.ensemble import run_ensemble
from mdpl.ensemble.toy import ToyBucketModel, toy_space
from mdpl.errors import ConfigError

CFG = SurrogateConfig(epochs=40, hidden_size=16, state_size=8, window_days=120, warmup_days=30, batch_size=24,
                      tasks=["Qle", "Qh"], patience=0, val_fraction=0.1, test_fraction=0.1)


def _error_at(sur, store, datasets, model, theta) -> float:
    """Daily Qle RMSE (W m-2) between surrogate and model at ``theta`` (site, P), over the sites."""
    truth = model.simulate(datasets, theta[:, None, :], daily=True).fluxes["Qle"]
    errs = []
    for i, s in enumerate(store.sites):
        with torch.no_grad():
            pred = sur.predict(store.features[s], torch.as_tensor(theta[i : i + 1], dtype=torch.float64))["Qle"][0]
        n = min(len(pred), truth.shape[1])
        errs.append(np.sqrt(np.mean((pred.cpu().numpy()[:n] - truth[i, :n]) ** 2)))
    return float(np.mean(errs))


def test_one_round_teaches_the_surrogate_the_corner_it_did_not_see(tmp_path):
    torch.set_num_threads(1)
    datasets = [site_twin(s, years=0.5, seed=2) for s in ("DK-Fou", "ZA-Kru")]
    model, space = ToyBucketModel(), toy_space()
    store = run_ensemble(datasets, model, space, 16, tmp_path / "ens", progress=False)
    sur = train_surrogate(store, CFG, seed=0, progress=False)
    corner = np.asarray(space.from_unit(np.array([[0.02, 0.03, 0.97, 0.98]] * 2)))  # low albedo, tiny bucket
    before = _error_at(sur, store, datasets, model, corner)
    joined, refined = refine_round(store, datasets, model, corner, CFG, tmp_path / "refine", n_members=8,
                                   spread=0.05, seed=0)
    assert joined.n_members == 24 and np.allclose(joined.params[:, 16], corner)
    after = _error_at(refined, joined, datasets, model, corner)
    assert after < 0.7 * before, (before, after)


def test_parameter_cloud_stays_in_the_box_and_starts_at_the_centre():
    space = toy_space()
    centre = np.asarray(space.from_unit(np.array([[0.0, 1.0, 0.5, 0.99]])))
    cloud = parameter_cloud(space, centre, 50, 0.2, seed=1)
    assert cloud.shape == (1, 50, 4)
    np.testing.assert_allclose(cloud[0, 0], centre[0])
    assert np.all(cloud >= space.lower) and np.all(cloud <= space.upper)
    with pytest.raises(ConfigError, match="refinement"):
        parameter_cloud(space, centre, 0, 0.1)
