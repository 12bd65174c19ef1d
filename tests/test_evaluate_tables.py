"""Tidy tables: the day rule, measured-step monthly means, ranking only within comparable groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines_toy import toy_site
from mdpl.evaluate.ranking import ranking_figure, ranking_summary
from mdpl.evaluate.tables import (
    TABLE_COLUMNS,
    daily_means,
    mean_rank,
    monthly_measured_means,
    rank_table,
    series_rows,
    tidy,
)


def _site_with_gaps():
    n = 3 * 48
    measured = np.ones(n, bool)
    measured[48 : 48 + 15] = False  # day 2: 33/48 = 69 % measured -> dropped under the 75 % rule
    measured[96 : 96 + 10] = False  # day 3: 38/48 = 79 % measured -> kept
    obs = np.repeat([10.0, 20.0, 30.0], 48)
    obs[~measured] = 1000.0  # gap-filled values still count in the daily mean of a kept day
    return toy_site("AA-One", obs, obs, days=3, measured=measured), obs


def test_daily_means_follow_the_callmip_day_rule():
    ds, obs = _site_with_gaps()
    days, o, s = daily_means(ds, "Qle", np.zeros_like(obs), 0.75)
    assert [d.day for d in days] == [1, 3]
    assert o[0] == 10.0 and o[1] == pytest.approx((38 * 30 + 10 * 1000) / 48)


def test_monthly_means_use_measured_steps_only():
    ds, obs = _site_with_gaps()
    labels, o, s = monthly_measured_means(ds, "Qle", obs + 1.0)
    measured = ds["Qle_measured"].values
    assert labels == ["2005-01"]
    assert o[0] == pytest.approx(obs[measured].mean()) and s[0] == pytest.approx(obs[measured].mean() + 1.0)


def test_halfhourly_rows_count_measured_steps():
    ds, obs = _site_with_gaps()
    rows = series_rows(ds, {"Qle": obs + 2.0}, "m", "out", scales=("halfhourly",))
    assert rows[0]["n"] == 3 * 48 - 25 and rows[0]["bias"] == pytest.approx(2.0) and rows[0]["rmse"] == pytest.approx(2.0)


def _toy_table():
    rows = []
    for site, errs in (("AA", {"MdPL": 5, "LSTM": 3, "1lin": 9}), ("BB", {"MdPL": 2, "LSTM": 4, "1lin": 8})):
        for model, e in errs.items():
            rows.append({"site": site, "flux": "Qle", "scale": "daily", "model": model, "rmse": float(e),
                         "comparison": "held_out", "sample": "out"})
    # a half-hourly peer number must not be ranked against the daily ones
    rows.append({"site": "AA", "flux": "Qle", "scale": "halfhourly", "model": "JULES", "rmse": 1.0,
                 "comparison": "plumber2_basis", "sample": "out"})
    rows.append({"site": "CC", "flux": "Qle", "scale": "daily", "model": "MdPL", "rmse": float("nan"), "n": 1,
                 "comparison": "held_out", "sample": "out"})
    return rank_table(tidy(rows))


def test_ranks_only_within_comparable_groups():
    df = _toy_table()
    assert list(df.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    r = df.set_index(["site", "scale", "model"])["rank"]
    assert r[("AA", "daily", "LSTM")] == 1 and r[("AA", "daily", "MdPL")] == 2 and r[("AA", "daily", "1lin")] == 3
    assert r[("AA", "halfhourly", "JULES")] == 1
    m = mean_rank(df)
    mdpl = m[(m.model == "MdPL") & (m.scale == "daily")].iloc[0]
    assert mdpl.mean_rank == 1.5 and mdpl.n_sites == 2


def test_summary_says_where_mdpl_loses_and_figure_draws():
    df = _toy_table()
    text = ranking_summary(df)
    assert "AA: MdPL ranks 2 of 3 (RMSE 5.0); better: LSTM (3.0)" in text
    assert "BB: MdPL ranks 1 of 3 (RMSE 2.0); best" in text
    assert "CC: MdPL not scored (n = 1)" in text
    assert "| held_out | daily | Qle | 1.50 of 3 | 1lin 2/2, LSTM 1/2 |" in text
    fig, axes = ranking_figure(df)
    assert axes.shape == (2, 1)
    import matplotlib.pyplot as plt

    plt.close(fig)
