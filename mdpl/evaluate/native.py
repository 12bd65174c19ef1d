"""Land-model fluxes at the forcing's own time step, kept from the study's evaluation runs.

The evaluation runs every parameter source over each site's whole record
anyway; keeping Qle and Qh at every step there lets the benchmark score the
study on the PLUMBER2 basis (measured half-hours, uncorrected fluxes, whole
record) without a second land-model run. One file per site,
``<study>/evaluation/native_<site>.nc``: variables ``<source>_<flux>`` on the
site's ``time`` axis, float32, W m-2.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

UNITS = {"Qle": "W m-2", "Qh": "W m-2", "NEE": "umol m-2 s-1"}


def native_path(eval_dir: str | Path, site: str) -> Path:
    return Path(eval_dir) / f"native_{site}.nc"


def write_native(path: str | Path, time, sims: Mapping[str, Mapping[str, np.ndarray]]) -> Path:
    """Write ``sims`` (source -> flux -> (time,) array) on ``time`` atomically."""
    import xarray as xr

    path = Path(path)
    ds = xr.Dataset(coords={"time": np.asarray(time)})
    for src, fluxes in sims.items():
        for flux, v in fluxes.items():
            ds[f"{src}_{flux}"] = ("time", np.asarray(v, np.float32),
                                   {"units": UNITS.get(flux, ""), "source": src, "flux": flux})
    ds.attrs.update(sources=",".join(sims), note="land-model output at the forcing's step, whole record")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp)
    tmp.replace(path)
    return path


def read_native(path: str | Path) -> tuple[np.ndarray, dict[str, dict[str, np.ndarray]]]:
    """(time, source -> flux -> (time,) float64 array) of a file written by :func:`write_native`."""
    import xarray as xr

    with xr.open_dataset(path) as ds:
        out: dict[str, dict[str, np.ndarray]] = {}
        for v in ds.data_vars.values():
            out.setdefault(str(v.attrs["source"]), {})[str(v.attrs["flux"])] = v.values.astype(float)
        return ds["time"].values, out
