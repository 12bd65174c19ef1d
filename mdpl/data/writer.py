"""Write a canonical Dataset back to ALMA netCDF files (PLUMBER2 or PALS dialect).

Used to hand forcing to external land models, to export synthetic sites, and
by the tests to make well-formed (and deliberately broken) files without the
real data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from mdpl.data.discover import SiteFiles
from mdpl.data.schema import FLUX_VARS, measured_name

_PALS_STEMS = {"ES-ES2": "ElSaler2", "ZA-Kru": "Kruger", "ID-Pag": "Palang"}


def _grid(values: np.ndarray, attrs: dict, extra_dims: tuple[str, ...] = ("y", "x")) -> xr.Variable:
    arr = np.asarray(values, dtype=np.float32).reshape((-1,) + (1,) * len(extra_dims))
    return xr.Variable(("time",) + extra_dims, arr, attrs)


def write_alma(
    ds: xr.Dataset, directory: str | Path, *, dialect: str = "plumber2", stamp: str | None = None
) -> SiteFiles:
    """Write ``ds`` as a Met/Flux pair in ``directory``; returns the paths.

    ``dialect='plumber2'``: ``<SITE>_<Y0>-<Y1>_SYNTH_Met.nc``/``_Flux.nc``, Precip
    total, qc 0 = measured, stamps at step start by default. ``dialect='pals'``:
    ``<Name>Fluxnet.1.4_met.nc``/``_flux.nc``, PSurf, Rainf (total) in mm/s,
    qc 1 = observed, stamps at step end by default.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    step = int(ds.attrs["time_step_s"])
    stamp = stamp or ("end" if dialect == "pals" else "start")
    shift = {"start": 0, "middle": step // 2, "end": step}[stamp]
    t0 = ds.time.values[0].astype("datetime64[D]")
    secs = ((ds.time.values - t0) / np.timedelta64(1, "s")).astype(np.float64) + shift
    years = ds.time.dt.year.values
    site = str(ds.attrs["site"])
    pals = dialect == "pals"
    if pals:
        base = str(t0)[:10] + (" 00:30:00" if shift == step and step == 1800 else " 00:00:00")
        if base.endswith("00:30:00"):
            secs = secs - 1800
        tattrs = {"units": f"seconds since {base}"}
        stem = _PALS_STEMS.get(site, site.replace("-", ""))
        met_path, flux_path = out / f"{stem}Fluxnet.1.4_met.nc", out / f"{stem}Fluxnet.1.4_flux.nc"
        gattrs = {"PALS_dataset_name": f"{stem}Fluxnet", "PALS_dataset_version": "1.4"}
    else:
        tattrs = {"units": f"seconds since {str(t0)[:10]} 00:00:00", "calendar": "standard", "standard_name": "time"}
        name = f"{site}_{years.min()}-{years.max()}_SYNTH"
        met_path, flux_path = out / f"{name}_Met.nc", out / f"{name}_Flux.nc"
        gattrs = {"site_code": site, "site_name": str(ds.attrs.get("site_name", site))}
    wm2 = "W/m^2" if pals else "W/m2"
    coords = {"time": ("time", secs, tattrs), "x": ("x", [1.0]), "y": ("y", [1.0])}
    precip = ds["Rainf"].values + ds["Snowf"].values
    met = {
        "SWdown": _grid(ds["SWdown"].values, {"units": wm2}),
        "LWdown": _grid(ds["LWdown"].values, {"units": wm2}),
        "Tair": _grid(ds["Tair"].values, {"units": "K"}),
        "Qair": _grid(ds["Qair"].values, {"units": "kg/kg"}),
        "Wind": _grid(ds["Wind"].values, {"units": "m/s"}),
        ("PSurf" if pals else "Psurf"): _grid(ds["Psurf"].values, {"units": "Pa"}),
        ("Rainf" if pals else "Precip"): _grid(precip, {"units": "mm/s" if pals else "kg/m2/s"}),
    }
    if not pals:
        met["CO2air"] = _grid(ds["CO2air"].values, {"units": "ppm"})
        met["LAI"] = _grid(ds["LAI"].values, {"units": "1"})
    site_vars = {
        "latitude": xr.Variable(("y", "x"), [[ds.attrs["latitude"]]], {"units": "degrees_north"}),
        "longitude": xr.Variable(("y", "x"), [[ds.attrs["longitude"]]], {"units": "degrees_east"}),
        "elevation": xr.Variable(("y", "x"), [[ds.attrs["elevation_m"]]], {"units": "m"}),
        "reference_height": xr.Variable(("y", "x"), [[ds.attrs["reference_height_m"]]], {"units": "m"}),
    }
    if not pals:
        site_vars["canopy_height"] = xr.Variable(("y", "x"), [[ds.attrs["canopy_height_m"]]], {"units": "m"})
        site_vars["IGBP_veg_short"] = xr.Variable((), np.bytes_(str(ds.attrs["igbp"])))
    enc_t = {"time": {"dtype": "float64", "_FillValue": None}}
    xr.Dataset({**met, **site_vars}, coords=coords, attrs=gattrs).to_netcdf(met_path, encoding=enc_t)

    flux = {}
    for f in FLUX_VARS:
        v = ds[f].values
        if not np.isfinite(v).any():
            continue
        m = ds[measured_name(f)].values
        flux[f] = _grid(np.where(np.isfinite(v), v, -9999.0), {"units": wm2 if FLUX_VARS[f] == "W m-2" else
                                                               ("umol/m^2/s" if pals else "umol/m2/s"),
                                                               "missing_value": -9999.0})
        qc = np.where(m, 1.0, 0.0) if pals else np.where(m, 0.0, 2.0)
        flux[f + "_qc"] = _grid(qc, {"units": "-" if pals else "1",
                                     **({"values": "As fluxdata.org qcOK: 1 - ok, 0 - ??"} if pals else {})})
    if flux:
        xr.Dataset({**flux, **site_vars}, coords=coords, attrs=gattrs).to_netcdf(flux_path, encoding=enc_t)
    return SiteFiles(site, met_path, flux_path if flux else None, None, dialect)
