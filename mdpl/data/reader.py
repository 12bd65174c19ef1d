"""One reader for ALMA flux-tower netCDF in both dialects -> the canonical Dataset.

Dialects handled (see ``../shared/data/README.md``):

- **PLUMBER2 v1.0** (``<SITE>_<Y0>-<Y1>_<SRC>_Met.nc`` / ``_Flux.nc``, optional
  ``_site.nc``): ``Precip`` (total), ``Psurf``; ``_qc`` 0 = measured, 1-3 =
  gap-filled (5 = missing); stamps mark step starts. Re-packaged copies may
  lack LAI, CO2air and site attributes, carry one extra trailing step, and an
  all-zero ``Wind2`` (ignored: ``Wind`` is the measured wind at the reference
  height; ``Wind2`` would only be used, as 2 m wind, if ``Wind`` were missing
  and ``Wind2`` held data).
- **PALS Fluxnet 1.4** (``<Name>Fluxnet.1.4_met.nc`` / ``_flux.nc``): ``PSurf``,
  ``Rainf`` in mm/s (total precipitation: no ``Snowf``), no LAI/CO2air/IGBP;
  quality flags run the other way (1 = observed); stamps mark step *ends*
  (first stamp 00:30); GPP is never written (netCDF default fill).

Time stamps: whether a file stamps the start, middle or end of each step is
read from the first stamp's offset from midnight (0, half a step, one step),
as flux-tower records begin at a day boundary; ``stamp=`` overrides. The
canonical ``time`` is the step start in the file's own clock (local standard
time for FLUXNET-derived data); ``attrs['utc_offset_h']`` is estimated from the
SWdown diurnal cycle against solar geometry (nearest half hour).

What a file lacks is filled as the land-surface modelling community does
(:mod:`mdpl.data.fill`) and noted in ``attrs['filled']``; fluxes a file lacks
are listed in ``attrs['absent']``; the origin of each measured mask is in
``attrs['measured_from']``; data-quality doubts in ``attrs['warnings']``.

This module reads the series (alignment, forcing, fluxes and their masks);
who and where the site is comes from :mod:`mdpl.data.site_attrs`, and the
raw values out of each file from :mod:`mdpl.data.netcdf`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data import fill
from mdpl.data.catalogue import pft_group, site_info, site_water_facts
from mdpl.data.checks import check_fluxes, check_forcing, check_humidity, check_precip, fill_gaps
from mdpl.data.netcdf import open_netcdf, series
from mdpl.data.schema import FLUX_VARS, FORCING_VARS, assemble
from mdpl.data.site_attrs import (check_same_site, heights, igbp_class, site_code_from_files, site_name, site_position,
                                  soil_texture)
from mdpl.data.timeaxis import decode_time, estimate_utc_offset_h, step_and_starts
from mdpl.data.units import to_canonical
from mdpl.errors import DataError

#: fluxes a flux file must hold with at least some data
REQUIRED_FLUXES = ("Qle", "Qh")
#: forcing a met file must hold (humidity may come as Qair, RH or VPD; precipitation as Precip or Rainf)
REQUIRED_FORCING = ("SWdown", "LWdown", "Tair", "Wind")
#: when a flux has no flag of its own, its mask follows this flux (GPP is partitioned from NEE; *_cor from Qle/Qh)
QC_FALLBACK = {"GPP": "NEE", "Qle_cor": "Qle", "Qh_cor": "Qh"}


# ----------------------------------------------------------------------------- dialect
def detect_dialect(ds: xr.Dataset, path: Path) -> str:
    """'pals' for PALS Fluxnet 1.4 files, else 'plumber2' (PLUMBER2 and generic ALMA)."""
    if "PALS_dataset_name" in ds.attrs or re.search(r"Fluxnet\.1\.4", path.name):
        return "pals"
    for v in ds.data_vars:
        if v.endswith("_qc") and re.search(r"1\s*-\s*ok", str(ds[v].attrs.get("values", "")), re.I):
            return "pals"
    return "plumber2"


# ----------------------------------------------------------------------------- quality flags
def measured_from_qc(qc: np.ndarray, dialect: str) -> np.ndarray:
    """Boolean 'measured' from a flag array: PLUMBER2 0 = measured; PALS 1 = observed. NaN flags -> False."""
    q = np.asarray(qc, dtype=float)
    good = 1.0 if dialect == "pals" else 0.0
    return np.isfinite(q) & (q == good)


# ----------------------------------------------------------------------------- main entry
def read_site(
    met_path: str | Path,
    flux_path: str | Path | None = None,
    site_path: str | Path | None = None,
    *,
    stamp: str = "auto",
) -> xr.Dataset:
    """Read one site's Met (+ Flux, + site) files into the canonical Dataset.

    Raises :class:`DataError` naming the file and the problem for a missing,
    truncated or non-netCDF file, a file without time, a missing required
    variable, impossible units or values, or an unknown site code without the
    attributes to stand in for the catalogue.

    The steps, in order: open and match the files, align their time axes,
    read the required forcing, place the site, fill pressure and humidity,
    check the forcing, read (or split) precipitation, CO2 and LAI, fill the
    remaining gaps, read the fluxes and their measured masks, and write the
    site attributes (every fill is recorded in ``attrs['filled']``).
    """
    met_path = Path(met_path)
    files = ";".join(str(p) for p in (met_path, flux_path, site_path) if p is not None)
    flux_path = Path(flux_path) if flux_path is not None else None
    met = open_netcdf(met_path)
    flux = open_netcdf(flux_path) if flux_path is not None else None
    site_ds = open_netcdf(Path(site_path)) if site_path is not None else None
    attrs: dict = {"source": detect_dialect(met, met_path)}
    notes: list[str] = []
    warnings: list[str] = []
    if flux is not None:
        check_same_site(met, flux, met_path, flux_path)

    times, step, m_stamp, m_idx, f_idx = _align_times(met, flux, met_path, flux_path, stamp, notes)
    mf = _MetFile(met, met_path, m_idx)
    forcing = _required_forcing(mf, attrs)
    code = site_code_from_files(met_path, [d for d in (flux, met) if d is not None])
    try:
        info = site_info(code)
    except DataError:
        info = None
    lat, lon, elev = site_position(met, flux, site_ds, info, code, met_path, attrs, warnings)
    _pressure_and_humidity(mf, forcing, times, elev, attrs)
    check_forcing(forcing, met_path, attrs, warnings)  # Tair/SWdown sanity before they feed other fills
    _precipitation(mf, forcing, attrs)
    forcing["CO2air"] = _co2(mf, times, attrs)
    igbp = igbp_class(met, flux, site_ds, info, attrs, met_path, code)
    forcing["LAI"] = _lai(mf, site_ds, times, igbp, lat, attrs, notes)
    for name in FORCING_VARS:
        forcing[name] = fill_gaps(forcing[name], name, met_path, attrs)

    if flux is not None:
        fluxes, masks, origin, absent = _read_fluxes(flux, flux_path, f_idx, warnings)
    else:
        fluxes, masks, origin, absent = {}, {}, [], list(FLUX_VARS)

    attrs["site"] = info["site"] if info else code
    attrs["site_name"] = site_name(met, flux, info, code, attrs)
    attrs["igbp"] = igbp
    attrs["pft_group"] = pft_group(igbp)
    attrs["latitude"], attrs["longitude"], attrs["elevation_m"] = float(lat), float(lon), float(elev)
    attrs["reference_height_m"], attrs["canopy_height_m"] = heights(met, flux, site_ds, igbp, attrs)
    attrs.update(soil_texture(site_ds))
    for k, v in site_water_facts(attrs["site"]).items():  # documented wetland / paddy facts
        attrs.setdefault(k, v)
    attrs["time_step_s"] = int(step)
    attrs["time_stamp_in_file"] = m_stamp
    attrs["utc_offset_h"] = estimate_utc_offset_h(times, forcing["SWdown"], step, lat, lon)
    fill.add_filled(attrs, "utc_offset_h", "estimated from the SWdown diurnal cycle")
    attrs["absent"] = ",".join(absent)
    attrs["measured_from"] = ";".join(origin)
    attrs["warnings"] = ";".join(warnings)
    attrs["notes"] = ";".join(notes)
    attrs["files"] = files
    attrs.setdefault("filled", "")
    check_humidity(forcing, attrs, warnings)
    attrs["warnings"] = ";".join(warnings)
    return assemble(times, forcing, attrs, fluxes, masks)


class _MetFile:
    """A Met file cut to the aligned steps: which alias of a variable it holds, and its values in canonical units."""

    ALIASES = {"Psurf": ("Psurf", "PSurf"), "Wind": ("Wind",)}

    def __init__(self, ds: xr.Dataset, path: Path, idx: np.ndarray):
        self.ds, self.path, self.idx = ds, path, idx

    def raw(self, var: str) -> np.ndarray:
        """Values of ``var`` on the aligned steps, in the file's units."""
        return series(self.ds, var, self.path)[self.idx]

    def present(self, name: str) -> str | None:
        """The file's name for ``name`` (an alias such as PSurf) when it is a time series there, else None."""
        for a in self.ALIASES.get(name, (name,)):
            if a in self.ds.variables and "time" in self.ds[a].dims:
                return a
        return None

    def get(self, name: str, canonical: str, var: str | None = None) -> np.ndarray:
        """``name`` (or the file variable ``var``) on the aligned steps, converted to ``canonical`` units."""
        v = var or self.present(name)
        return to_canonical(self.raw(v), self.ds[v].attrs.get("units"), canonical, var=v, path=self.path)


def _align_times(met, flux, met_path: Path, flux_path: Path | None, stamp: str, notes: list):
    """Step-start times common to Met and Flux: (times, step_s, Met stamp convention, Met indices, Flux indices)."""
    m_times, step, m_stamp = step_and_starts(decode_time(met, met_path), met_path, stamp)
    m_idx = np.arange(m_times.size)
    f_idx = None
    times = m_times
    if flux is not None:
        f_times, f_step, _ = step_and_starts(decode_time(flux, flux_path), flux_path, stamp)
        if f_step != step:
            raise DataError(f"{flux_path}: time step {f_step} s differs from the Met file's {step} s ({met_path.name})")
        times, m_idx, f_idx = np.intersect1d(m_times, f_times, assume_unique=True, return_indices=True)
        if times.size < 0.5 * min(m_times.size, f_times.size):
            raise DataError(f"{flux_path}: Met and Flux periods barely overlap ({times.size} common steps of "
                            f"{m_times.size} / {f_times.size})")
        dropped = m_times.size - times.size, f_times.size - times.size
        if any(dropped):
            notes.append(f"trimmed to the common Met/Flux period (dropped {dropped[0]} Met, {dropped[1]} Flux steps)")
    elif m_times.size % (86400 // step) == 1:
        times, m_idx = m_times[:-1], m_idx[:-1]
        notes.append("dropped a lone trailing Met step")
    if times.size < 2:
        raise DataError(f"{met_path}: fewer than two time steps after alignment")
    return times, step, m_stamp, m_idx, f_idx


# ----------------------------------------------------------------------------- forcing
def _required_forcing(mf: _MetFile, attrs: dict) -> dict[str, np.ndarray]:
    """SWdown, LWdown, Tair and Wind (2 m wind when that is all there is), canonical units."""
    forcing: dict[str, np.ndarray] = {}
    for name in REQUIRED_FORCING:
        if mf.present(name) is None:
            if name == "Wind" and "Wind2" in mf.ds.variables and np.nanmax(np.abs(series(mf.ds, "Wind2", mf.path))) > 0:
                forcing["Wind"] = mf.get("Wind", "m s-1", "Wind2")
                fill.add_filled(attrs, "Wind", "Wind2 (2 m wind) as given")
                continue
            raise DataError(f"{mf.path}: required variable {name} is missing")
        forcing[name] = mf.get(name, FORCING_VARS[name])
    return forcing


def _pressure_and_humidity(mf: _MetFile, forcing: dict, times: np.ndarray, elev: float, attrs: dict) -> None:
    """Psurf (Pa; barometric at the site elevation when absent) and Qair (kg kg-1; from RH or VPD when absent)."""
    if mf.present("Psurf"):
        forcing["Psurf"] = mf.get("Psurf", "Pa")
    else:
        forcing["Psurf"] = np.full(times.size, fill.barometric_pressure_pa(elev))
        fill.add_filled(attrs, "Psurf", "barometric formula at site elevation")
    if mf.present("Qair"):
        forcing["Qair"] = mf.get("Qair", "kg kg-1")
    elif mf.present("RH"):
        rh = mf.get("RH", "1")
        if np.nanmax(rh) > 1.5:  # percent despite missing units
            rh = rh / 100.0
        forcing["Qair"] = fill.qair_from_rh(rh, forcing["Tair"], forcing["Psurf"])
        fill.add_filled(attrs, "Qair", "from RH, Tair and Psurf")
    elif mf.present("VPD"):
        vpd = mf.get("VPD", "Pa")
        es = fill.saturation_vapour_pressure_pa(forcing["Tair"])
        forcing["Qair"] = fill.qair_from_rh(np.clip(1 - vpd / es, 0.0, 1.0), forcing["Tair"], forcing["Psurf"])
        fill.add_filled(attrs, "Qair", "from VPD, Tair and Psurf")
    else:
        raise DataError(f"{mf.path}: required variable Qair is missing (no RH or VPD either)")


def _precipitation(mf: _MetFile, forcing: dict, attrs: dict) -> None:
    """Rainf and Snowf (kg m-2 s-1, >= 0): as given, or a total split by air temperature."""
    if mf.present("Rainf") and mf.present("Snowf"):
        forcing["Rainf"], forcing["Snowf"] = mf.get("Rainf", "kg m-2 s-1"), mf.get("Snowf", "kg m-2 s-1")
    elif mf.present("Precip") or mf.present("Rainf"):
        which = "Precip" if mf.present("Precip") else "Rainf"
        total = mf.get(which, "kg m-2 s-1")
        check_precip(total, which, mf.path)
        forcing["Rainf"], forcing["Snowf"] = fill.split_precip(np.clip(total, 0, None), forcing["Tair"])
        lo, hi = fill.SNOW_RAMP_K
        fill.add_filled(attrs, "Snowf", f"{which} (total) split by air temperature ({lo}-{hi} K ramp)")
    else:
        raise DataError(f"{mf.path}: required variable Precip (or Rainf) is missing")
    for k in ("Rainf", "Snowf"):
        check_precip(forcing[k], k, mf.path)
        forcing[k] = np.clip(forcing[k], 0, None)


def _co2(mf: _MetFile, times: np.ndarray, attrs: dict) -> np.ndarray:
    """CO2air (ppm): the file's values, NOAA Mauna Loa annual means where they are missing or implausible."""
    co2_fill = fill.co2_series(times)
    if not mf.present("CO2air"):
        fill.add_filled(attrs, "CO2air", "NOAA Mauna Loa annual means")
        return co2_fill
    co2 = mf.get("CO2air", "ppm")
    bad = ~np.isfinite(co2) | (co2 < 250) | (co2 > 1000)
    if bad.all():
        fill.add_filled(attrs, "CO2air", "NOAA Mauna Loa annual means (file values unusable)")
        return co2_fill
    if bad.any():
        fill.add_filled(attrs, "CO2air", f"NOAA Mauna Loa annual means where missing ({bad.mean():.1%})")
        return np.where(bad, co2_fill, co2)
    return co2


def _site_lai(site_ds: xr.Dataset, times: np.ndarray) -> np.ndarray | None:
    """Monthly LAI of a PLUMBER2-style site file on the steps (linear between mid-months), or None."""
    if "LAI_monthly" not in site_ds.variables:
        return None
    lai = np.asarray(site_ds["LAI_monthly"].values, dtype=float)
    if lai.ndim == 1:
        lai = lai[None, :]
    if lai.shape[-1] != 12 or not np.isfinite(lai).all() or lai.min() < 0 or lai.max() > 12 or lai.max() == 0:
        return None
    years = (np.asarray(site_ds["LAI_year"].values, dtype=int).ravel() if "LAI_year" in site_ds.variables
             else np.arange(lai.shape[0]))
    clim = lai.mean(axis=0)
    t = pd.DatetimeIndex(times)
    y0, y1 = t.year.min() - 1, t.year.max() + 1
    knots_t, knots_v = [], []
    for y in range(y0, y1 + 1):
        row = lai[list(years).index(y)] if y in years else clim
        for mth in range(12):
            knots_t.append(pd.Timestamp(year=y, month=mth + 1, day=15).value)
            knots_v.append(row[mth])
    return np.interp(t.asi8.astype(float), np.asarray(knots_t, dtype=float), np.asarray(knots_v))


def _lai(mf: _MetFile, site_ds, times: np.ndarray, igbp: str, lat: float, attrs: dict, notes: list) -> np.ndarray:
    """LAI (m2 m-2): the Met file's (gaps interpolated), else the site file's monthly LAI, else a PFT climatology."""
    if mf.present("LAI") and np.isfinite(mf.raw("LAI")).any():
        lai = mf.get("LAI", "m2 m-2")
        if np.isnan(lai).any():
            lai = pd.Series(lai).interpolate(limit_direction="both").to_numpy()
            notes.append("LAI gaps interpolated")
        return lai
    lai = _site_lai(site_ds, times) if site_ds is not None else None
    if lai is not None:
        fill.add_filled(attrs, "LAI", "monthly LAI of the site file (interpolated)")
        return lai
    fill.add_filled(attrs, "LAI", f"PFT climatology ({igbp}, {'southern' if lat < 0 else 'northern'} hemisphere)")
    return fill.lai_climatology(times, igbp, lat)


# ----------------------------------------------------------------------------- fluxes
def _read_fluxes(flux: xr.Dataset, fp: Path, f_idx: np.ndarray, warnings: list):
    """Fluxes in canonical units with their measured masks: (fluxes, masks, where each mask came from, absent names)."""
    fluxes: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    origin: list[str] = []
    absent: list[str] = []
    fdialect = detect_dialect(flux, fp)
    good = "1" if fdialect == "pals" else "0"
    for name in FLUX_VARS:
        if name not in flux.variables:
            absent.append(name)
            continue
        vals = to_canonical(series(flux, name, fp)[f_idx], flux[name].attrs.get("units"), FLUX_VARS[name],
                            var=name, path=fp)
        if not np.isfinite(vals).any():
            if name in REQUIRED_FLUXES:
                raise DataError(f"{fp}: flux {name} is all missing (all-NaN)")
            absent.append(name)
            warnings.append(f"{name} in the file holds no data")
            continue
        fluxes[name] = vals
        if f"{name}_qc" in flux.variables:
            masks[name] = measured_from_qc(series(flux, f"{name}_qc", fp)[f_idx], fdialect) & np.isfinite(vals)
            origin.append(f"{name}={name}_qc=={good}")
        elif QC_FALLBACK.get(name) in masks:
            ref = QC_FALLBACK[name]
            masks[name] = masks[ref] & np.isfinite(vals)
            origin.append(f"{name}={ref}_qc=={good}")
        else:
            masks[name] = np.isfinite(vals)
            origin.append(f"{name}=finite values (no flag)")
    for name in REQUIRED_FLUXES:
        if name in absent:
            raise DataError(f"{fp}: required flux {name} is missing")
    check_fluxes(fluxes, fp)
    return fluxes, masks, origin, absent


def read_met(met_path: str | Path, site_path: str | Path | None = None, *, stamp: str = "auto") -> xr.Dataset:
    """Forcing only: :func:`read_site` without a Flux file (fluxes all-NaN, unmeasured)."""
    return read_site(met_path, None, site_path, stamp=stamp)
