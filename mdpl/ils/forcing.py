"""Canonical per-site Datasets -> the tensors the land model runs on.

:class:`ForcingTensors` holds every forcing variable as a ``(site, time)``
tensor plus the per-site heights and IGBP class. All sites of one run must
have the same number of steps and the same step length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from mdpl.data.schema import FORCING_VARS
from mdpl.errors import ModelError

#: plausible ranges of each forcing variable (after gap filling), for early, clear errors
_RANGES = {
    "SWdown": (-10.0, 1500.0), "LWdown": (50.0, 700.0), "Tair": (180.0, 340.0), "Qair": (0.0, 0.1),
    "Psurf": (3e4, 1.2e5), "Wind": (0.0, 80.0), "Rainf": (0.0, 0.5), "Snowf": (0.0, 0.5),
    "CO2air": (100.0, 2000.0), "LAI": (0.0, 15.0),
}


@dataclass
class ForcingTensors:
    """Forcing of ``n_sites`` sites: ``data[var]`` is ``(site, time)``; heights are ``(site,)`` in m."""

    data: dict[str, torch.Tensor]
    reference_height_m: torch.Tensor
    canopy_height_m: torch.Tensor
    igbp: list[str]
    sites: list[str]
    time: pd.DatetimeIndex
    time_step_s: float
    attrs: list[dict] = field(default_factory=list)

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def n_steps(self) -> int:
        return len(self.time)

    def to(self, device=None, dtype=None) -> ForcingTensors:
        def cv(t):
            return t.to(device=device, dtype=dtype)
        return replace(self, data={k: cv(v) for k, v in self.data.items()},
                       reference_height_m=cv(self.reference_height_m), canopy_height_m=cv(self.canopy_height_m))

    def slice_time(self, start: int, stop: int) -> ForcingTensors:
        return replace(self, data={k: v[:, start:stop] for k, v in self.data.items()}, time=self.time[start:stop])

    def select_sites(self, index: list[int]) -> ForcingTensors:
        idx = torch.as_tensor(index, device=self.reference_height_m.device)
        return replace(self, data={k: v.index_select(0, idx) for k, v in self.data.items()},
                       reference_height_m=self.reference_height_m.index_select(0, idx),
                       canopy_height_m=self.canopy_height_m.index_select(0, idx),
                       igbp=[self.igbp[i] for i in index], sites=[self.sites[i] for i in index],
                       attrs=[self.attrs[i] for i in index] if self.attrs else [])


def _site_name(ds: xr.Dataset, i: int) -> str:
    return str(ds.attrs.get("site", f"site{i}"))


def _attr_float(ds: xr.Dataset, name: str, site: str) -> float:
    if name not in ds.attrs:
        raise ModelError(f"site {site}: forcing lacks attribute {name!r}")
    try:
        v = float(ds.attrs[name])
    except (TypeError, ValueError):
        raise ModelError(f"site {site}: attribute {name}={ds.attrs[name]!r} is not a number") from None
    if not np.isfinite(v) or v <= 0:
        raise ModelError(f"site {site}: attribute {name}={v} must be a positive number")
    return v


def _check_values(arr: np.ndarray, var: str, site: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ModelError(f"site {site}: forcing {var} has {int(bad.sum())} missing/non-finite values "
                         f"(first at step {int(np.argmax(bad))}); gap-fill the forcing first")
    lo, hi = _RANGES[var]
    if arr.min() < lo or arr.max() > hi:
        raise ModelError(f"site {site}: forcing {var} outside plausible range [{lo}, {hi}] "
                         f"{FORCING_VARS[var]} (min {arr.min():.4g}, max {arr.max():.4g}); check its units")


def forcing_from_datasets(datasets: xr.Dataset | list[xr.Dataset], device=None,
                          dtype: torch.dtype = torch.float32) -> ForcingTensors:
    """Stack canonical per-site Datasets (same number of steps) into :class:`ForcingTensors`."""
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    if not datasets:
        raise ModelError("no forcing given")
    sites = [_site_name(ds, i) for i, ds in enumerate(datasets)]
    n = datasets[0].sizes.get("time", 0)
    dt0 = None
    cols: dict[str, list[np.ndarray]] = {v: [] for v in FORCING_VARS}
    zref, hc, igbp, attrs = [], [], [], []
    for ds, site in zip(datasets, sites):
        if ds.sizes.get("time", 0) != n:
            raise ModelError(f"site {site}: {ds.sizes.get('time', 0)} time steps but site {sites[0]} has {n}; "
                             "run sites of different lengths separately")
        dt = _attr_float(ds, "time_step_s", site)
        if dt0 is None:
            dt0 = dt
        elif dt != dt0:
            raise ModelError(f"site {site}: time step {dt:g} s differs from {dt0:g} s of site {sites[0]}")
        for var in FORCING_VARS:
            if var not in ds:
                raise ModelError(f"site {site}: forcing variable {var} missing")
            arr = np.asarray(ds[var].values, dtype=float).reshape(-1)
            _check_values(arr, var, site)
            cols[var].append(arr)
        zref.append(_attr_float(ds, "reference_height_m", site))
        hc.append(_attr_float(ds, "canopy_height_m", site))
        igbp.append(str(ds.attrs.get("igbp", "")).strip().upper())
        attrs.append(dict(ds.attrs))
    if n < 1:
        raise ModelError(f"site {sites[0]}: forcing has no time steps")
    kw = dict(device=device, dtype=dtype)
    data = {v: torch.as_tensor(np.stack(cols[v]), **kw) for v in FORCING_VARS}
    time = pd.DatetimeIndex(datasets[0]["time"].values)
    return ForcingTensors(data=data, reference_height_m=torch.as_tensor(zref, **kw),
                          canopy_height_m=torch.as_tensor(hc, **kw), igbp=igbp, sites=sites, time=time,
                          time_step_s=float(dt0), attrs=attrs)


def as_forcing(forcing, device=None, dtype=torch.float32) -> ForcingTensors:
    """Accept a Dataset, a list of Datasets or :class:`ForcingTensors`; return tensors on ``device``."""
    if isinstance(forcing, ForcingTensors):
        return forcing.to(device=device, dtype=dtype)
    if isinstance(forcing, xr.Dataset) or (isinstance(forcing, (list, tuple)) and forcing
                                            and all(isinstance(d, xr.Dataset) for d in forcing)):
        return forcing_from_datasets(list(forcing) if isinstance(forcing, tuple) else forcing, device, dtype)
    raise ModelError(f"forcing must be a canonical xarray.Dataset, a list of them or ForcingTensors, "
                     f"got {type(forcing).__name__}")


def write_forcing_netcdf(ds: xr.Dataset, path: str | Path) -> Path:
    """Write the forcing part of a canonical Dataset as an ALMA netCDF file (for external models)."""
    keep = [v for v in FORCING_VARS if v in ds]
    out = ds[keep].copy()
    for v in keep:
        out[v].attrs["units"] = FORCING_VARS[v]
    out.attrs = {k: (v if isinstance(v, (str, int, float, np.integer, np.floating)) else str(v))
                 for k, v in ds.attrs.items() if v is not None}
    path = Path(path)
    out.to_netcdf(path)
    return path


def read_forcing_netcdf(path: str | Path) -> xr.Dataset:
    """Read a forcing file: a canonical/ALMA file as written by :func:`write_forcing_netcdf`,
    or (when ``mdpl.data`` can read it) a raw PLUMBER2/PALS met file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: forcing file not found")
    try:
        ds = xr.load_dataset(path)
    except Exception as e:  # netCDF library errors vary
        raise ModelError(f"{path}: not a readable netCDF file ({e})") from None
    if all(v in ds for v in FORCING_VARS) and "time_step_s" in ds.attrs:
        return ds
    from mdpl.data.reader import read_met

    return read_met(path)
