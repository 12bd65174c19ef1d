"""Sites of different lengths and calendars in one land-model call: group, pad, and read back.

A land-model call stacks sites as columns, so all its sites need the same
number of steps. Rather than one call (and one spin-up) per record length,
:func:`batch_groups` puts together every site that shares the step length,
the time of day of the first step and the spin-up window (the first 365 days,
or the whole record when shorter), and :func:`pad_group` extends the shorter
records at their end by repeating their own first steps. Padding only ever
comes after a site's real steps and spin-up only sees its first year, so each
site's real steps are simulated exactly as they would be alone (the embedded
model's spin-up stops each column on its own convergence); callers read each
site's first ``len(its days)`` daily values and drop the rest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

#: sites whose records differ by more than this many days run in separate calls (bounds the padding)
MAX_PAD_DAYS = 400
_YEAR_S = 365 * 86400


def batch_key(ds: xr.Dataset) -> tuple:
    """Sites with equal keys can share a call once padded: (step s, first-step time of day min, spin-up steps)."""
    t0 = pd.Timestamp(ds["time"].values[0])
    dt = float(ds.attrs.get("time_step_s", 0))
    n = int(ds.sizes["time"])
    spin = min(n, int(round(_YEAR_S / dt))) if dt > 0 else n
    return dt, t0.hour * 60 + t0.minute, spin


def batch_groups(datasets: Sequence[xr.Dataset], max_pad_days: float = MAX_PAD_DAYS) -> list[list[int]]:
    """Indices of sites that run in one call: equal :func:`batch_key`, lengths within ``max_pad_days`` days."""
    by_key: dict[tuple, list[tuple[int, int]]] = {}
    for i, ds in enumerate(datasets):
        by_key.setdefault(batch_key(ds), []).append((int(ds.sizes["time"]), i))
    groups = []
    for (dt, _, _), members in by_key.items():
        tol = int(round(max_pad_days * 86400 / dt)) if dt > 0 else 0
        members.sort()
        current, n_min = [], 0
        for n, i in members:
            if current and n - n_min > tol:
                groups.append(sorted(current))
                current = []
            if not current:
                n_min = n
            current.append(i)
        groups.append(sorted(current))
    return sorted(groups)


def pad_record(ds: xr.Dataset, n_steps: int) -> xr.Dataset:
    """``ds`` extended to ``n_steps`` steps by repeating its record from the start; the time axis runs on.

    The padded steps are valid forcing (the site's own) so the model runs them without complaint; their
    output belongs to no real day and is dropped by the caller.
    """
    n = int(ds.sizes["time"])
    if n_steps <= n:
        return ds
    idx = np.arange(n_steps) % n
    out = ds.isel(time=idx)
    dt = np.timedelta64(int(round(float(ds.attrs["time_step_s"]) * 1e9)), "ns")
    out = out.assign_coords(time=ds["time"].values[0] + np.arange(n_steps) * dt)
    out.attrs = dict(ds.attrs, padded_steps=int(n_steps - n))
    return out


def pad_group(datasets: Sequence[xr.Dataset]) -> list[xr.Dataset]:
    """Every dataset padded to the longest record of the group (see :func:`pad_record`)."""
    n = max(int(ds.sizes["time"]) for ds in datasets)
    return [pad_record(ds, n) for ds in datasets]
