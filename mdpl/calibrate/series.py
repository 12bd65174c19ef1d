"""A study's daily series of one site, cut to a period, aggregated by month and summarised for a Taylor diagram.

The same measured days and the same monthly rule as the scores
(:mod:`mdpl.calibrate.evaluation`), so a figure shows what was scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.calibrate.evaluation import MIN_DAYS_PER_MONTH, monthly_means
from mdpl.calibrate.targets import observed_daily
from mdpl.evaluate.metrics import taylor_stats


def observed_series(features, flux: str) -> pd.Series:
    """Daily mean observed ``flux`` of one :class:`~mdpl.data.features.SiteFeatures`, NaN on days not measured.

    The days and values the calibration targets use
    (:func:`mdpl.calibrate.targets.observed_daily`, uncorrected), as a Series by day.
    """
    vals, measured, _ = observed_daily(features, flux, corrected=False)
    return pd.Series(np.where(measured, vals, np.nan), index=features.days, name=flux)


def period_series(series, flux: str, sources: Sequence[str], period: str = "test"):
    """Daily observed and simulated ``flux`` of one site in one period, from ``StudyResult.series(site)``.

    Returns ``(obs, {source: sim})`` as pandas Series indexed by day; obs is
    NaN on days not measured, everything is NaN outside ``period`` ('train',
    'test' or 'all'). Sources without a simulation in ``series`` are skipped.
    """
    days = pd.DatetimeIndex(series["day"].values)
    in_period = np.ones(len(days), bool) if period == "all" else series[period].values.astype(bool)
    measured = series[f"obs_{flux}_measured"].values.astype(bool)
    obs = pd.Series(np.where(in_period & measured, series[f"obs_{flux}"].values, np.nan), index=days, name="observed")
    sims = {}
    for src in sources:
        name = f"sim_{src}_{flux}"
        if name in series:
            sims[src] = pd.Series(np.where(in_period, series[name].values, np.nan), index=days, name=src)
    return obs, sims


def monthly_series(series, flux: str, sources: Sequence[str], period: str = "test", min_days: int | None = None):
    """Monthly means of obs and each simulation over the measured days of ``period`` (the same days for all).

    Months with fewer than ``min_days`` such days (default: the evaluation's
    ``MIN_DAYS_PER_MONTH``) are dropped, as in the monthly scores.
    """
    min_days = MIN_DAYS_PER_MONTH if min_days is None else min_days
    obs, sims = period_series(series, flux, sources, period)
    frame = pd.DataFrame({"observed": obs, **sims})[obs.notna()]
    if frame.empty:
        return frame["observed"], {k: frame[k] for k in sims}
    m = monthly_means(frame, min_days)
    m.index = m.index.to_timestamp()
    return m["observed"], {k: m[k] for k in sims}


def taylor_points(series, flux: str, sources: Sequence[str], period: str = "test") -> dict:
    """``{source: taylor_stats}`` of each source against the observations on the measured days of ``period``."""
    obs, sims = period_series(series, flux, sources, period)
    return {src: taylor_stats(obs.to_numpy(), sim.to_numpy()) for src, sim in sims.items()}


def merged_series(study_series, transfer_series):
    """A study's daily series of one site with the transferred run (``sim_loso_*``) added."""
    return xr.merge([study_series, transfer_series], join="left")
