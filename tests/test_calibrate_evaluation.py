"""Scoring land-model runs: known answers for daily/monthly metrics, masks, batching, result files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibrate_toy import TorchBucketModel
from mdpl.calibrate.evaluation import (
    evaluate_sources,
    monthly_pairs,
    score_site,
    simulate_sources,
    simulate_sources_many,
)
from mdpl.calibrate.result import CalibrationResult
from mdpl.data.features import FORCING_FEATURES, STATIC_FEATURES, SiteFeatures, site_features, split_periods
from mdpl.data.synthetic import generate_site


def _features(days=120):
    d = pd.date_range("2005-01-01", periods=days, freq="D")
    rng = np.random.default_rng(0)
    obs = {k: (100 + 30 * rng.standard_normal(days)).astype(np.float32) for k in ("Qle", "Qh", "NEE")}
    mask = {k: np.ones(days, bool) for k in obs}
    mask["Qle"][:10] = False
    return SiteFeatures("S", "GRA", "grassland", d, np.zeros((days, len(FORCING_FEATURES)), np.float32),
                        d.day_of_year.to_numpy(), np.zeros(len(STATIC_FEATURES), np.float32), obs, mask)


def test_score_site_known_answers():
    f = _features()
    sims = {"plus1": pd.DataFrame({k: f.obs[k].astype(float) + 1.0 for k in ("Qle", "Qh", "NEE")}, index=f.days)}
    train = np.arange(f.n_days) < 90
    recs = pd.DataFrame(score_site(f, sims, {"train": train, "test": ~train}))
    daily = recs[(recs.scale == "daily") & (recs.flux == "Qle")].set_index("period")
    assert daily.loc["train", "rmse"] == pytest.approx(1.0, rel=1e-5)
    assert daily.loc["train", "bias"] == pytest.approx(1.0, rel=1e-5)
    assert daily.loc["train", "n"] == 80 and daily.loc["test", "n"] == 30  # unmeasured days left out
    assert daily.loc["train", "r"] == pytest.approx(1.0)
    monthly = recs[(recs.scale == "monthly") & (recs.flux == "Qh") & (recs.period == "train")].iloc[0]
    assert monthly.n == 3 and monthly.bias == pytest.approx(1.0, rel=1e-5)  # Jan, Feb, Mar (>= 10 days each)


def test_monthly_pairs_drop_sparse_months():
    days = pd.date_range("2005-01-01", periods=59, freq="D")  # January and February
    use = np.ones(59, bool)
    use[31:50] = False  # February keeps 9 days
    o, s = monthly_pairs(days, np.arange(59.0), np.arange(59.0) * 2, use)
    assert o.tolist() == [15.0] and s.tolist() == [30.0]


def test_batched_sites_equal_one_by_one():
    m = TorchBucketModel()
    dss = [generate_site("A", igbp="GRA", years=0.1, time_step_s=3600, seed=1),
           generate_site("B", igbp="CRO", latitude=30, years=0.1, time_step_s=3600, seed=2)]
    sp = m.parameter_space
    params = {"default": np.stack([sp.defaults("GRA"), sp.defaults("CRO")]),
              "other": np.stack([sp.from_unit(np.full(4, 0.3)), sp.from_unit(np.full(4, 0.7))])}
    together = simulate_sources_many(m, dss, params)
    for i, ds in enumerate(dss):
        alone = simulate_sources(m, ds, {k: v[i] for k, v in params.items()})
        for k in params:
            pd.testing.assert_frame_equal(together[i][k], alone[k], check_freq=False)


def test_sites_of_different_lengths_and_years_share_one_run():
    """Three sites of 1, 1.3 and 2 years starting in different years run in one padded call; each equals its
    run alone (its own days, nothing from the padding)."""
    m = TorchBucketModel()
    dss = [generate_site("A", igbp="GRA", years=1, time_step_s=3600, seed=1, start="2005-01-01"),
           generate_site("B", igbp="CRO", latitude=30, years=1.3, time_step_s=3600, seed=2, start="2008-01-01"),
           generate_site("C", igbp="GRA", latitude=50, years=2, time_step_s=3600, seed=3, start="2002-01-01")]
    sp = m.parameter_space
    params = {"default": np.stack([sp.defaults("GRA"), sp.defaults("CRO"), sp.defaults("GRA")]),
              "other": np.stack([sp.from_unit(np.full(4, u)) for u in (0.3, 0.7, 0.5)])}
    records, series = evaluate_sources(m, dss, [site_features(ds, 0.0) for ds in dss], params,
                                       [split_periods(site_features(ds, 0.0).days) for ds in dss], progress=False)
    assert m.calls == 1
    for i, ds in enumerate(dss):
        alone = simulate_sources(TorchBucketModel(), ds, {k: v[i] for k, v in params.items()})
        for k in params:
            assert len(series[ds.attrs["site"]][k]) == site_features(ds, 0.0).n_days
            pd.testing.assert_frame_equal(series[ds.attrs["site"]][k], alone[k], check_freq=False)


def test_calibration_result_round_trip(tmp_path):
    r = CalibrationResult("mdpl", ["A", "B"], ["x", "y"], ["m", "1"], np.array([[1.0, 2.0], [3.0, 4.0]]),
                          history=[{"epoch": 0, "loss": 1.5}], notes=["n"], info={"best_epoch": 0})
    r.save(tmp_path / "c")
    assert CalibrationResult.exists(tmp_path / "c")
    back = CalibrationResult.load(tmp_path / "c")
    np.testing.assert_array_equal(back.params, r.params)
    assert back.sites == ["A", "B"] and back.history[0]["loss"] == 1.5 and back.notes == ["n"]
    assert list(back.frame().columns) == ["site", "source", "x", "y"]


def test_non_finite_land_model_runs_are_reported():
    from mdpl.calibrate.verdicts import non_finite_runs

    days = pd.date_range("2005-01-01", periods=4, freq="D")
    good = pd.DataFrame({"Qle": [1.0, 2, 3, 4]}, index=days)
    bad = pd.DataFrame({"Qle": [1.0, np.nan, np.nan, 4]}, index=days)
    msgs = non_finite_runs({"ZA-Kru": {"default": good, "mdpl": bad}})
    assert msgs == ["site ZA-Kru, parameters mdpl: the land model returned non-finite Qle on 2 of 4 days"]


def test_native_steps_kept_from_the_same_run_match_its_daily_means():
    """``native=`` keeps Qle/Qh at every step of the evaluation's own run; their daily means are its daily series
    and the daily-output run gives the same (so the PLUMBER2 basis needs no second run)."""
    from mdpl.config import LsmConfig
    from mdpl.data.synthetic import site_twin
    from mdpl.ils import EmbeddedLSM

    m = EmbeddedLSM(LsmConfig(spinup_max_years=1, dtype="float64"), device="cpu")
    dss = [site_twin("DK-Fou", years=3 / 365.25, seed=1, start="2005-06-01"),
           site_twin("ID-Pag", years=4 / 365.25, seed=2, start="2002-06-01")]
    sp = m.parameter_space
    params = {"default": np.stack([sp.defaults("CRO"), sp.defaults("EBF")]),
              "mid": np.stack([sp.from_unit(np.full(sp.n, 0.4))] * 2)}
    feats = [site_features(ds, 0.0) for ds in dss]
    split = [split_periods(f.days) for f in feats]
    native: dict = {}
    recs, series = evaluate_sources(m, dss, feats, params, split, progress=False, native=("Qle", "Qh"), native_out=native)
    recs_daily, series_daily = evaluate_sources(m, dss, feats, params, split, progress=False)
    for ds in dss:
        site = ds.attrs["site"]
        for k in params:
            steps = native[site][k]["Qle"]
            assert steps.shape == (ds.sizes["time"],) and steps.dtype == np.float32
            np.testing.assert_allclose(steps.reshape(-1, 48).mean(1), series[site][k]["Qle"].to_numpy(), rtol=1e-6)
            pd.testing.assert_frame_equal(series[site][k], series_daily[site][k], check_freq=False, rtol=1e-6)
    assert [r["rmse"] for r in recs] == pytest.approx([r["rmse"] for r in recs_daily], rel=1e-6, nan_ok=True)
