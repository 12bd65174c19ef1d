import math

import numpy as np
import pytest

from mdpl.evaluate import metrics as m


def test_perfect_prediction():
    obs = np.array([1.0, 2.0, 4.0, 8.0])
    got = m.all_metrics(obs, obs)
    assert got["rmse"] == 0 and got["bias"] == 0 and got["n"] == 4
    assert got["r"] == pytest.approx(1) and got["nse"] == pytest.approx(1) and got["kge"] == pytest.approx(1)


def test_known_answers():
    obs = np.array([0.0, 1.0, 2.0, 3.0])
    sim = obs + 1.0  # constant offset
    assert m.rmse(obs, sim) == pytest.approx(1.0)
    assert m.bias(obs, sim) == pytest.approx(1.0)
    assert m.pearson_r(obs, sim) == pytest.approx(1.0)
    # SS_obs = 5, SSE = 4 -> NSE = 0.2
    assert m.nse(obs, sim) == pytest.approx(0.2)
    # r=1, alpha=1, beta = 2.5/1.5
    assert m.kge(obs, sim) == pytest.approx(1 - abs(2.5 / 1.5 - 1))
    # mean of obs predicts NSE = 0
    assert m.nse(obs, np.full(4, obs.mean())) == pytest.approx(0.0)


def test_nan_and_mask_drop_pairs():
    obs = np.array([1.0, np.nan, 3.0, 4.0, 100.0])
    sim = np.array([1.0, 2.0, np.nan, 4.0, 0.0])
    mask = np.array([True, True, True, True, False])
    got = m.all_metrics(obs, sim, mask)
    assert got["n"] == 2 and got["rmse"] == 0.0


def test_too_few_pairs_is_nan():
    assert math.isnan(m.rmse([1.0], [2.0]))
    assert math.isnan(m.kge([1.0, 1.0], [1.0, 2.0]))  # zero-variance obs


def test_taylor_law_of_cosines():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=500)
    sim = 0.7 * obs + rng.normal(scale=0.5, size=500)
    t = m.taylor_stats(obs, sim)
    assert t["crmsd"] ** 2 == pytest.approx(1 + t["sd_ratio"] ** 2 - 2 * t["sd_ratio"] * t["r"])


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="differ in size"):
        m.rmse([1.0, 2.0], [1.0])
