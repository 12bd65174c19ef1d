"""Time axes of ALMA netCDF files: CF decoding, step length and stamp convention, the clock's UTC offset.

Whether a file stamps the start, middle or end of each step is read from the
first stamp's offset from midnight (0, half a step, one step), as flux-tower
records begin at a day boundary; the canonical ``time`` is the step start.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data import solar
from mdpl.errors import DataError

_UNIT_SECONDS = {"second": 1, "seconds": 1, "sec": 1, "s": 1, "minute": 60, "minutes": 60, "min": 60,
                 "hour": 3600, "hours": 3600, "h": 3600, "day": 86400, "days": 86400, "d": 86400}


def decode_time(ds: xr.Dataset, path: Path) -> np.ndarray:
    """Raw time stamps as datetime64[ns] from CF ``<unit> since <date>`` (standard calendar)."""
    if "time" not in ds.variables or "time" not in ds.dims:
        raise DataError(f"{path}: no time axis (variable/dimension 'time' missing)")
    t = ds["time"]
    units = str(t.attrs.get("units", ""))
    m = re.match(r"\s*(\w+)\s+since\s+(.+?)\s*$", units)
    if not m or m.group(1).lower() not in _UNIT_SECONDS:
        raise DataError(f"{path}: time has units {units!r}; expected '<seconds|minutes|hours|days> since <date>'")
    cal = str(t.attrs.get("calendar", "standard")).lower()
    if cal not in ("standard", "gregorian", "proleptic_gregorian"):
        raise DataError(f"{path}: time calendar {cal!r} is not supported (standard/gregorian only)")
    try:
        ref = pd.Timestamp(m.group(2).replace("T", " ").rstrip("Z").strip())
    except ValueError:
        raise DataError(f"{path}: cannot parse the time reference date in {units!r}") from None
    vals = np.asarray(t.values, dtype=np.float64).ravel()
    if vals.size == 0:
        raise DataError(f"{path}: time axis is empty")
    if not np.isfinite(vals).all():
        raise DataError(f"{path}: time axis has missing values")
    sec = np.round(vals * _UNIT_SECONDS[m.group(1).lower()]).astype(np.int64)
    ref = ref.tz_localize(None) if ref.tzinfo else ref
    return np.datetime64(ref.to_datetime64(), "ns") + sec.astype("timedelta64[s]").astype("timedelta64[ns]")


def step_and_starts(raw: np.ndarray, path: Path, stamp: str = "auto") -> tuple[np.ndarray, int, str]:
    """(step start times, step length in s, detected stamp convention) of a regular time axis."""
    if raw.size < 2:
        raise DataError(f"{path}: time axis has {raw.size} step(s); need at least two")
    d = np.diff(raw).astype("timedelta64[s]").astype(np.int64)
    step = int(np.median(d))
    if np.any(d <= 0):
        i = int(np.argmax(d <= 0))
        what = "runs backwards" if np.all(d < 0) else ("goes backwards" if d[i] < 0 else "repeats a time")
        raise DataError(f"{path}: time axis {what} (step {i} to {i + 1}: {raw[i]} -> {raw[i + 1]}); "
                        "times must increase")
    if step <= 0 or np.any(d != step):
        bad = int(np.sum(d != step))
        raise DataError(f"{path}: irregular time axis ({bad} step(s) differ from the {step} s median step)")
    if 86400 % step:
        raise DataError(f"{path}: time step {step} s does not divide a day")
    if stamp == "auto":
        # seconds after midnight of the first stamp: 0 start, half a step middle, one step end
        first = int((raw[0] - raw[0].astype("datetime64[D]")).astype("timedelta64[s]").astype(np.int64))
        if first == step:
            stamp = "end"
        elif first % step == 0:
            stamp = "start"
        elif 2 * (first % step) == step:
            stamp = "middle"
        else:
            raise DataError(
                f"{path}: cannot tell whether time stamps mark step start, middle or end "
                f"(first stamp {str(raw[0])[:19]}, step {step} s)"
            )
    shift = {"start": 0, "middle": step // 2, "end": step}.get(stamp)
    if shift is None:
        raise DataError(f"stamp must be 'auto', 'start', 'middle' or 'end', got {stamp!r}")
    return raw - np.timedelta64(shift, "s"), step, stamp


def estimate_utc_offset_h(times: np.ndarray, swdown: np.ndarray, step_s: int, lat: float, lon: float) -> float:
    """Hours the stamps run ahead of UTC, from the SWdown diurnal cycle vs solar geometry (nearest 0.5 h).

    Compares the SWdown-weighted mean hour of day with the hour of solar noon in
    UTC; exact to a few minutes at the five study sites.
    """
    ok = np.isfinite(swdown)
    hours = ((times - times.astype("datetime64[D]")) / np.timedelta64(1, "h") + 0.5 * step_s / 3600.0)[ok]
    w = np.clip(swdown[ok], 0, None)
    if w.sum() <= 0:
        return float(round(lon / 15.0))
    ang = 2 * np.pi * hours / 24.0
    centroid = (np.arctan2((w * np.sin(ang)).sum(), (w * np.cos(ang)).sum()) * 24.0 / (2 * np.pi)) % 24.0
    noon_utc = 12.0 - lon / 15.0 - np.mean(solar.equation_of_time_min(times[:: max(1, times.size // 365)])) / 60.0
    off = ((centroid - noon_utc + 12.0) % 24.0) - 12.0
    return float(np.round(off * 2.0) / 2.0)
