"""The observation LSTM: forward shape, learning a known mapping, out-of-sample bookkeeping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mdpl.baselines.lstm_obs import LSTMObsSettings, evaluate_obs_lstm, evaluation_rows, train_obs_lstm
from mdpl.data.features import SiteFeatures, split_periods
from mdpl.models.lstm_obs import ObsLSTM


def _site(name: str, seed: int, offset: float, n_days: int = 400) -> SiteFeatures:
    """Qle follows a 3-day running mean of forcing 0; Qh follows forcing 1; static shifts Qh."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2004-01-01", periods=n_days, freq="D")
    x = rng.normal(size=(n_days, 3)).astype(np.float32)
    run = np.convolve(x[:, 0], np.ones(3) / 3, mode="full")[:n_days]
    qle = 80 + 40 * run
    qh = 30 + 25 * x[:, 1] + offset
    mask = np.ones(n_days, bool)
    mask[::7] = False
    return SiteFeatures(
        site=name, igbp="GRA", pft_group="grassland", days=days, forcing=x, doy=days.day_of_year.to_numpy(),
        static=np.array([offset, 1.0], np.float32), obs={"Qle": qle, "Qh": qh}, obs_mask={"Qle": mask, "Qh": mask},
        forcing_names=("a", "b", "c"), static_names=("offset", "one"),
    )


def test_forward_shape_and_bad_input():
    net = ObsLSTM(3, 2, 2, hidden_size=8)
    y = net(torch.zeros(4, 10, 3), torch.zeros(4, 2))
    assert y.shape == (4, 10, 2)
    with pytest.raises(ValueError, match="forcing must be"):
        net(torch.zeros(4, 10, 5), torch.zeros(4, 2))


def test_lstm_learns_a_simple_mapping_out_of_period():
    torch.set_num_threads(1)
    sites = [_site("AA-One", 0, 0.0), _site("BB-Two", 1, 20.0)]
    settings = LSTMObsSettings(hidden_size=16, iterations=250, batch_size=8, window_days=60, warmup_days=10)
    evals = evaluate_obs_lstm(sites, settings, loso=False)
    for e in evals:
        assert e.model == "LSTM" and e.trained_on == ("AA-One", "BB-Two")
        for k in ("Qle", "Qh"):
            m = e.day_mask[k]
            err = np.sqrt(np.mean((e.sim[k][m] - e.obs[k][m]) ** 2))
            assert err < 0.35 * np.std(e.obs[k][m]), (e.site, k, err)
    # the test days are exactly the held-out part of the calibration split, measured days only
    _, test = split_periods(sites[0].days)
    assert np.array_equal(evals[0].day_mask["Qle"], test & sites[0].obs_mask["Qle"])
    rows = evaluation_rows(evals, {"AA-One": "grassland"})
    assert {r["scale"] for r in rows} == {"daily", "monthly"} and all(r["sample"] == "out" for r in rows)


def test_training_period_excludes_test_observations():
    # corrupt the test period's observations: a model that trained on them would be pulled far off
    a, b = _site("AA-One", 0, 0.0), _site("BB-Two", 1, 20.0)
    settings = LSTMObsSettings(hidden_size=8, iterations=5, window_days=60, warmup_days=10)
    masks = [split_periods(s.days)[0] for s in (a, b)]
    base = train_obs_lstm([a, b], masks, settings)
    for s in (a, b):
        test = ~split_periods(s.days)[0]
        s.obs["Qle"] = np.where(test, 1e6, s.obs["Qle"])
    again = train_obs_lstm([a, b], masks, settings)
    np.testing.assert_allclose(base.normaliser.target_mean, again.normaliser.target_mean)
    assert base.losses == pytest.approx(again.losses)
