"""1lin and 3km27: known answers on constructed data, out-of-sample training."""

from __future__ import annotations

import numpy as np
import pytest

from baselines_toy import toy_site
from mdpl.baselines.empirical import (
    ClusterLinearBenchmark,
    LinearBenchmark,
    empirical_inputs,
    fit_benchmark,
    predict_out_of_sample,
)
from mdpl.errors import DataError


def test_1lin_recovers_exact_linear_relation():
    sw = np.linspace(0, 1000, 500)
    y = 12.0 + 0.37 * sw
    model = LinearBenchmark().fit(sw, y)
    np.testing.assert_allclose(model.coef_, [12.0, 0.37], rtol=1e-10)
    np.testing.assert_allclose(model.predict(np.array([0.0, 500.0])), [12.0, 197.0], rtol=1e-10)


def test_3km27_separates_clusters_and_fits_each_regime():
    rng = np.random.default_rng(1)
    centres = np.array([[100.0, 275.0, 90.0], [500.0, 290.0, 60.0], [900.0, 305.0, 20.0]])
    slopes = np.array([[0.1, 1.0, 0.0], [0.6, -2.0, 0.5], [0.2, 5.0, -1.0]])
    x, y, regime = [], [], []
    for k in range(3):
        xk = centres[k] + rng.normal(0, [20, 1, 3], size=(1000, 3))
        x.append(xk)
        y.append(10 * k + (xk - centres[k]) @ slopes[k])
        regime.append(np.full(1000, k))
    x, y, regime = np.concatenate(x), np.concatenate(y), np.concatenate(regime)
    km = ClusterLinearBenchmark(27, seed=0).fit(x, y)
    lab = km.labels(x)
    # no cluster mixes two regimes
    for c in np.unique(lab):
        assert len(np.unique(regime[lab == c])) == 1
    # piecewise-linear truth is recovered; one global line cannot do it
    assert np.sqrt(np.mean((km.predict(x) - y) ** 2)) < 1e-6
    assert np.sqrt(np.mean((LinearBenchmark().fit(x, y).predict(x) - y) ** 2)) > 1.0


def test_3km27_is_deterministic_for_a_seed():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = x @ [1.0, 2.0, 3.0] + np.sin(3 * x[:, 0])
    a = ClusterLinearBenchmark(27, seed=4).fit(x, y).predict(x)
    b = ClusterLinearBenchmark(27, seed=4).fit(x, y).predict(x)
    np.testing.assert_array_equal(a, b)


def test_out_of_sample_training_excludes_the_target_site():
    # others: Qle = 0.2 SW; target: Qle = 0.9 SW. Fitted on others only, the
    # prediction for the target must follow 0.2 SW, never its own 0.9.
    sites = {
        "AA-One": toy_site("AA-One", lambda sw, t, rh: 0.9 * sw, lambda sw, t, rh: 0.1 * sw, seed=1),
        "BB-Two": toy_site("BB-Two", lambda sw, t, rh: 0.2 * sw, lambda sw, t, rh: 0.5 * sw, seed=2),
        "CC-Six": toy_site("CC-Six", lambda sw, t, rh: 0.2 * sw, lambda sw, t, rh: 0.5 * sw, seed=3),
    }
    pred = predict_out_of_sample("1lin", sites)
    assert pred["AA-One"].trained_on == ("BB-Two", "CC-Six")
    sw = sites["AA-One"]["SWdown"].values
    np.testing.assert_allclose(pred["AA-One"].fluxes["Qle"], 0.2 * sw, atol=1e-8)
    np.testing.assert_allclose(pred["AA-One"].fluxes["Qh"], 0.5 * sw, atol=1e-8)
    # BB-Two's model pools AA-One and CC-Six: its slope lies between 0.2 and 0.9
    slope = np.polyfit(sites["BB-Two"]["SWdown"].values, pred["BB-Two"].fluxes["Qle"], 1)[0]
    assert 0.25 < slope < 0.85


def test_training_uses_measured_steps_only():
    n = 20 * 48
    measured = np.ones(n, bool)
    measured[::3] = False
    ds = toy_site("AA-One", lambda sw, t, rh: 2.0 * sw + 5, lambda sw, t, rh: 0 * sw, measured=measured)
    ds["Qle"].values[~measured] = 1e4  # gap-filled garbage must not leak into the fit
    model = fit_benchmark("1lin", [ds], "Qle")
    np.testing.assert_allclose(model.coef_, [5.0, 2.0], rtol=1e-8)


def test_inputs_are_swdown_tair_and_rh_percent():
    ds = toy_site("AA-One", np.zeros(960), np.zeros(960))
    x = empirical_inputs(ds)
    assert x.shape == (960, 3)
    assert 5 <= np.nanmin(x[:, 2]) and np.nanmax(x[:, 2]) <= 101  # RH in %


def test_bad_requests_name_the_problem():
    ds = toy_site("AA-One", np.zeros(960), np.zeros(960))
    with pytest.raises(DataError, match="unknown empirical benchmark '2lin'"):
        predict_out_of_sample("2lin", {"AA-One": ds, "BB": ds})
    with pytest.raises(DataError, match="at least two sites"):
        predict_out_of_sample("1lin", {"AA-One": ds})
