"""The figures' series use the scores' days and monthly rule (mdpl.calibrate.series over mdpl.calibrate.evaluation)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mdpl.calibrate.evaluation import MIN_DAYS_PER_MONTH, monthly_means, monthly_pairs
from mdpl.calibrate.series import observed_series
from mdpl.errors import DataError


def test_observed_series_is_the_calibration_target_on_measured_days():
    days = pd.date_range("2005-01-01", periods=5, freq="D")
    feats = SimpleNamespace(site="XX-Tst", days=days,
                            obs={"Qle": np.array([10.0, 20.0, np.nan, 40.0, 50.0])},
                            obs_mask={"Qle": np.array([True, False, True, True, True])})
    s = observed_series(feats, "Qle")
    assert list(s.index) == list(days) and s.name == "Qle"
    np.testing.assert_array_equal(s.to_numpy(), [10.0, np.nan, np.nan, 40.0, 50.0])
    with pytest.raises(DataError, match="XX-Tst.*Qh"):
        observed_series(feats, "Qh")


def test_monthly_means_drop_short_months_as_the_monthly_scores_do():
    days = pd.date_range("2005-01-01", "2005-02-28", freq="D")
    obs = np.arange(len(days), dtype=float)
    use = np.ones(len(days), bool)
    use[31 + MIN_DAYS_PER_MONTH - 1:] = False  # February keeps MIN_DAYS_PER_MONTH - 1 days: dropped
    frame = pd.DataFrame({"obs": obs, "sim": 2 * obs}, index=days)[use]
    m = monthly_means(frame)
    assert [str(p) for p in m.index] == ["2005-01"]
    assert m["obs"].iloc[0] == pytest.approx(15.0) and m["sim"].iloc[0] == pytest.approx(30.0)
    o, s = monthly_pairs(days, obs, 2 * obs, use)
    np.testing.assert_allclose(o, [15.0])
    np.testing.assert_allclose(s, [30.0])
    use[31:31 + MIN_DAYS_PER_MONTH] = True
    o, _ = monthly_pairs(days, obs, 2 * obs, use)
    np.testing.assert_allclose(o, [15.0, 31 + (MIN_DAYS_PER_MONTH - 1) / 2])
