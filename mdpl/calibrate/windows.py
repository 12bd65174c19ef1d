"""Calibration windows: stretches of training days on which the land model itself is run.

Direct and classical calibration run the (expensive) land model inside the
optimisation loop, so in quick mode they see a window of ``n_days``
consecutive whole days rather than the whole training period. The window is
the one with the most measured training days of the calibrated fluxes,
weighted by shortwave radiation (where the energy fluxes carry information).
All sites get windows of the same length, so they run as one batch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.calibrate.targets import observed_daily


def best_window(features, train_mask, tasks, n_days: int, *, corrected: bool = False) -> tuple[int, int]:
    """(start, stop) day indices of the most informative ``n_days`` window of training days."""
    n = features.n_days
    if n_days <= 0 or n_days >= n:
        return 0, n
    score = np.zeros(n)
    sw = np.asarray(features.forcing_var("SWdown"), dtype=float)
    for t in tasks:
        _, m, _ = observed_daily(features, t, corrected)
        score += (m & np.asarray(train_mask, bool)) * np.maximum(sw, 0.0)
    c = np.concatenate([[0.0], np.cumsum(score)])
    sums = c[n_days:] - c[: n - n_days + 1]
    start = int(np.argmax(sums))
    return start, start + n_days


def window_dataset(ds: xr.Dataset, days: pd.DatetimeIndex, start: int, stop: int) -> xr.Dataset:
    """The sub-daily forcing of whole days ``days[start:stop]`` (step-start labels in those days)."""
    t = pd.DatetimeIndex(ds["time"].values)
    d0, d1 = days[start], days[stop - 1] + pd.Timedelta(days=1)
    sel = (t >= d0) & (t < d1)
    return ds.isel(time=np.flatnonzero(sel))
