"""Daily and monthly means of a canonical Dataset, counting only well-measured days.

Following CalLMIP/PLUMBER2 practice a day's flux is kept only when at least
``min_measured_fraction`` (default 0.75: no more than 25 % gap-filled) of the
day's steps were measured; the day's value is then the mean of all its
available (measured and gap-filled) steps. Days that fail are NaN with
``X_measured`` False. Steps missing from a partial day count as not measured.
Forcing is a plain mean (precipitation as mean rate, kg m-2 s-1).

A month is the mean of its kept days and counts as measured when at least
``min_day_fraction`` of its calendar days were kept.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data.schema import FLUX_VARS, FORCING_VARS, measured_name


def _group_means(values: np.ndarray, inverse: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean of finite values, count of finite values) per group."""
    ok = np.isfinite(values)
    s = np.bincount(inverse, weights=np.where(ok, values, 0.0), minlength=n_groups)
    c = np.bincount(inverse, weights=ok.astype(float), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan), c


def _check_fraction(x: float, name: str) -> float:
    from mdpl.errors import ConfigError

    if not 0.0 <= float(x) <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {x}")
    return float(x)


def daily(ds: xr.Dataset, min_measured_fraction: float = 0.75) -> xr.Dataset:
    """Daily means; a flux counts on days with >= ``min_measured_fraction`` measured steps."""
    thr = _check_fraction(min_measured_fraction, "min_measured_fraction")
    step = int(ds.attrs["time_step_s"])
    per_day = 86400 // step
    days, inverse = np.unique(ds.time.values.astype("datetime64[D]"), return_inverse=True)
    n = days.size
    out = xr.Dataset(coords={"time": ("time", days.astype("datetime64[ns]"), {"long_name": "day (local standard time)"})})
    for name in FORCING_VARS:
        if name in ds:
            mean, _ = _group_means(ds[name].values.astype(float), inverse, n)
            out[name] = ("time", mean, dict(ds[name].attrs))
    for name in FLUX_VARS:
        if name not in ds:
            continue
        mname = measured_name(name)
        mask = ds[mname].values.astype(bool) if mname in ds else np.isfinite(ds[name].values)
        frac = np.bincount(inverse, weights=mask.astype(float), minlength=n) / per_day
        mean, _ = _group_means(ds[name].values.astype(float), inverse, n)
        keep = (frac >= thr) & np.isfinite(mean) & (frac > 0)
        out[name] = ("time", np.where(keep, mean, np.nan), dict(ds[name].attrs))
        out[mname] = ("time", keep, {"long_name": f"{name}: day with >= {thr:.0%} measured steps"})
        out[f"{name}_measured_fraction"] = ("time", frac, {"units": "1", "long_name": f"fraction of {name} steps measured"})
    out.attrs.update(ds.attrs)
    out.attrs["time_step_s"] = 86400
    out.attrs["aggregation"] = f"daily mean; fluxes kept on days with >= {thr:.0%} measured steps"
    return out


def monthly(ds: xr.Dataset, min_measured_fraction: float = 0.75, min_day_fraction: float = 0.5) -> xr.Dataset:
    """Monthly means of the kept days (see :func:`daily`); ``time`` labels the first of each month.

    ``attrs['time_step_s']`` is 0 for calendar months (``attrs['time_step'] = 'month'``).
    """
    thr_d = _check_fraction(min_day_fraction, "min_day_fraction")
    d = ds if ds.attrs.get("time_step_s") == 86400 and "aggregation" in ds.attrs else daily(ds, min_measured_fraction)
    months, inverse = np.unique(d.time.values.astype("datetime64[M]"), return_inverse=True)
    n = months.size
    days_in_month = np.asarray(pd.DatetimeIndex(months.astype("datetime64[ns]")).days_in_month, dtype=float)
    out = xr.Dataset(coords={"time": ("time", months.astype("datetime64[ns]"), {"long_name": "month (first day)"})})
    for name in FORCING_VARS:
        if name in d:
            out[name] = ("time", _group_means(d[name].values, inverse, n)[0], dict(d[name].attrs))
    for name in FLUX_VARS:
        if name not in d:
            continue
        mname = measured_name(name)
        kept = d[mname].values.astype(bool)
        mean, _ = _group_means(np.where(kept, d[name].values, np.nan), inverse, n)
        frac = np.bincount(inverse, weights=kept.astype(float), minlength=n) / days_in_month
        keep = (frac >= thr_d) & np.isfinite(mean) & (frac > 0)
        out[name] = ("time", np.where(keep, mean, np.nan), dict(d[name].attrs))
        out[mname] = ("time", keep, {"long_name": f"{name}: month with >= {thr_d:.0%} kept days"})
        out[f"{name}_measured_fraction"] = ("time", frac, {"units": "1", "long_name": f"fraction of {name} days kept"})
    out.attrs.update(ds.attrs)
    out.attrs["time_step_s"] = 0
    out.attrs["time_step"] = "month"
    out.attrs["aggregation"] = (f"monthly mean of days with >= {min_measured_fraction:.0%} measured steps; "
                                f"months with >= {thr_d:.0%} such days")
    return out
