"""Values out of one netCDF file: open it safely, and read a time series, a scalar or a text variable.

Every failure names the file (:class:`mdpl.errors.DataError`); unwritten
netCDF default fills (9.97e36) read as missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from mdpl.errors import DataError

#: values this large are unwritten netCDF default fills (9.97e36), not data
FILL_ABS = 1e30


def open_netcdf(path: str | Path) -> xr.Dataset:
    """Open and fully load a netCDF file (read-only), raising :class:`DataError` naming it on failure."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if not p.is_file():
        raise DataError(f"{p}: not a file")
    with p.open("rb") as fh:
        head = fh.read(8)
    if not (head.startswith(b"CDF") or head.startswith(b"\x89HDF")):
        raise DataError(f"{p}: not a netCDF file (unrecognised header {head[:4]!r})")
    try:
        with xr.open_dataset(p, decode_times=False, engine="netcdf4", cache=False) as ds:
            return ds.load()
    except DataError:
        raise
    except Exception as e:  # netCDF4 raises OSError/RuntimeError/IndexError on damaged files
        raise DataError(f"{p}: unreadable or truncated netCDF file ({type(e).__name__}: {e})") from None


def series(ds: xr.Dataset, name: str, path: Path) -> np.ndarray:
    """A variable as a 1-d float64 array along time (x/y/z singleton dims squeezed)."""
    da = ds[name]
    if "time" not in da.dims:
        raise DataError(f"{path}: variable {name} has no time dimension")
    extra = [d for d in da.dims if d != "time"]
    big = [d for d in extra if da.sizes[d] != 1]
    if big:
        raise DataError(f"{path}: variable {name} has non-singleton dimensions {big}; one site per file expected")
    arr = da.transpose("time", *extra).values.reshape(da.sizes["time"]).astype(np.float64)
    arr[np.abs(arr) >= FILL_ABS] = np.nan
    return arr


def scalar(ds: xr.Dataset, *names: str) -> float | None:
    """First finite scalar among ``names`` (variables or global attributes)."""
    for n in names:
        if n in ds.variables:
            v = np.asarray(ds[n].values, dtype=float).ravel() if ds[n].dtype.kind in "fiu" else None
            if v is not None and v.size and np.isfinite(v[0]) and abs(v[0]) < FILL_ABS:
                return float(v[0])
        if n in ds.attrs:
            try:
                return float(ds.attrs[n])
            except (TypeError, ValueError):
                pass
    return None


def text(ds: xr.Dataset, name: str) -> str | None:
    """A character variable (char array or string scalar) as stripped text."""
    if name not in ds.variables:
        return None
    v = np.asarray(ds[name].values).ravel()
    parts = [x.decode("utf-8", "ignore") if isinstance(x, bytes) else str(x) for x in v]
    out = "".join(parts).strip().strip("\x00").strip()
    return out or None


def first_scalar(dss: list, *names: str) -> float | None:
    """The first positive :func:`scalar` among ``names`` in ``dss`` (in order; None entries skipped)."""
    for d in dss:
        if d is not None:
            v = scalar(d, *names)
            if v is not None and v > 0:
                return v
    return None
