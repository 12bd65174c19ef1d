"""Fidelity report: known answers with an oracle and a biased surrogate, scopes, worst cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mdpl.calibrate.fidelity import COLUMNS, fidelity_report, worst_cases
from mdpl.calibrate.surrogate_training import train_surrogate
from mdpl.config import SurrogateConfig
from mdpl.data.synthetic import site_twin
from mdpl.ensemble import run_ensemble
from mdpl.ensemble.toy import ToyBucketModel, toy_space


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    sites = [site_twin(s, years=0.2, seed=3) for s in ("DK-Fou", "CN-Cng")]
    return run_ensemble(sites, ToyBucketModel(), toy_space(), 8, tmp_path_factory.mktemp("fid") / "ens",
                        batch_size=8, progress=False)


class Oracle:
    """A 'surrogate' that returns the land model's own series (plus an optional bias on Qh for one member)."""

    kind = "oracle"
    tasks = ["Qle", "Qh"]

    def __init__(self, store, bias=0.0, split=None):
        self.store, self.bias = store, bias
        self.split = split or {}
        self.info = {"store": str(store.path)}

    def predict(self, f, theta):
        i = self.store.site_index(f.site)
        members = [int(np.argmin(np.abs(self.store.params[i] - row).sum(1))) for row in theta.numpy()]
        out = {t: torch.as_tensor(self.store.member_series(f.site, t)[members], dtype=torch.float64) for t in self.tasks}
        if self.bias:
            out["Qh"] = out["Qh"].clone()
            out["Qh"][0] += self.bias
        return out


def test_oracle_is_perfect(store):
    rep = fidelity_report(Oracle(store), store, members="all")
    assert list(rep.columns) == COLUMNS
    assert set(rep.site) == {"DK-Fou", "CN-Cng", "ALL"} and set(rep.flux) == {"Qle", "Qh"}
    np.testing.assert_allclose(rep["rmse"], 0.0, atol=1e-9)
    np.testing.assert_allclose(rep[["r", "r2", "nse", "kge", "r2_param"]].to_numpy(float), 1.0, atol=1e-9)
    # an unseen-site scope: the oracle has no training split
    assert (rep.scope == "unseen_site").all()
    assert rep.loc[rep.site == "ALL", "n_members"].tolist() == [16, 16]


def test_known_bias_shows_up(store):
    rep = fidelity_report(Oracle(store, bias=10.0), store, members={"DK-Fou": [0, 1, 2, 3], "CN-Cng": [0, 1]})
    row = rep[(rep.flux == "Qh") & (rep.site == "DK-Fou")].iloc[0]
    n_days = store.features["DK-Fou"].n_days
    assert row["bias"] == pytest.approx(10.0 / 4)  # one member of four off by 10 W m-2
    assert row["rmse"] == pytest.approx(np.sqrt(100.0 / 4))
    assert row["n"] == 4 * n_days
    w = worst_cases(rep)
    top = w[w.flux == "Qh"].iloc[0]
    assert (top["site"], top["member"]) in {("DK-Fou", 0), ("CN-Cng", 0)}
    assert top["rmse"] == pytest.approx(10.0)
    assert rep[rep.flux == "Qle"]["rmse"].max() == pytest.approx(0.0, abs=1e-9)


def test_trained_surrogate_uses_its_test_members(store):
    sur = train_surrogate(store, SurrogateConfig(epochs=2, hidden_size=8, state_size=4, tasks=["Qle", "Qh"],
                                                 window_days=40, warmup_days=10, val_fraction=0.25, test_fraction=0.25),
                          progress=False)
    rep = fidelity_report(sur, store)
    assert (rep.scope == "heldout_params").all()
    assert rep.loc[rep.site == "DK-Fou", "n_members"].tolist() == [2, 2]
    assert np.isfinite(rep["rmse"]).all()
    assert isinstance(rep.attrs["worst"], pd.DataFrame) and len(rep.attrs["worst"]) == 2 * 4
    # 'all' scores every member
    assert fidelity_report(sur, store, members="all").loc[lambda d: d.site == "ALL", "n_members"].tolist() == [16, 16]


def test_failed_land_model_members_are_left_out(store):
    import copy

    broken = copy.deepcopy(store)
    broken.daily["Qh"][0, 3, 5] = np.nan  # the land model failed for member 3 at DK-Fou
    assert not broken.finite()[0, 3] and broken.finite()[0].sum() == 7 and broken.finite()[1].all()
    sur = train_surrogate(broken, SurrogateConfig(epochs=1, hidden_size=8, state_size=4, tasks=["Qle", "Qh"],
                                                  window_days=40, warmup_days=10), progress=False)
    assert all(3 not in idx for idx in sur.split["DK-Fou"].values())
    assert sur.info["failed_members"] == {"DK-Fou": [3]}
    rep = fidelity_report(Oracle(broken), broken, members="all")
    assert rep.loc[rep.site == "DK-Fou", "n_members"].tolist() == [7, 7]
