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
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data import fill
from mdpl.data.catalogue import PALS_NAMES, pft_group, site_info, site_water_facts
from mdpl.data.checks import check_fluxes, check_forcing, check_humidity, check_precip, fill_gaps
from mdpl.data.schema import FLUX_VARS, FORCING_VARS, assemble
from mdpl.data.timeaxis import decode_time, estimate_utc_offset_h, step_and_starts
from mdpl.data.units import to_canonical
from mdpl.errors import DataError

#: fluxes a flux file must hold with at least some data
REQUIRED_FLUXES = ("Qle", "Qh")
#: forcing a met file must hold (humidity may come as Qair, RH or VPD; precipitation as Precip or Rainf)
REQUIRED_FORCING = ("SWdown", "LWdown", "Tair", "Wind")
#: when a flux has no flag of its own, its mask follows this flux (GPP is partitioned from NEE; *_cor from Qle/Qh)
QC_FALLBACK = {"GPP": "NEE", "Qle_cor": "Qle", "Qh_cor": "Qh"}
#: IGBP class numbers (1-17) as used in the CN-Cng site file
IGBP_NUMBERS = {1: "ENF", 2: "EBF", 3: "DNF", 4: "DBF", 5: "MF", 6: "CSH", 7: "OSH", 8: "WSA", 9: "SAV",
                10: "GRA", 11: "WET", 12: "CRO", 13: "URB", 14: "CVM", 15: "SNO", 16: "BSV", 17: "WAT"}
#: values this large are unwritten netCDF default fills (9.97e36), not data
_FILL_ABS = 1e30


# ----------------------------------------------------------------------------- opening
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


def _series(ds: xr.Dataset, name: str, path: Path) -> np.ndarray:
    """A variable as a 1-d float64 array along time (x/y/z singleton dims squeezed)."""
    da = ds[name]
    if "time" not in da.dims:
        raise DataError(f"{path}: variable {name} has no time dimension")
    extra = [d for d in da.dims if d != "time"]
    big = [d for d in extra if da.sizes[d] != 1]
    if big:
        raise DataError(f"{path}: variable {name} has non-singleton dimensions {big}; one site per file expected")
    arr = da.transpose("time", *extra).values.reshape(da.sizes["time"]).astype(np.float64)
    arr[np.abs(arr) >= _FILL_ABS] = np.nan
    return arr


def _scalar(ds: xr.Dataset, *names: str) -> float | None:
    """First finite scalar among ``names`` (variables or global attributes)."""
    for n in names:
        if n in ds.variables:
            v = np.asarray(ds[n].values, dtype=float).ravel() if ds[n].dtype.kind in "fiu" else None
            if v is not None and v.size and np.isfinite(v[0]) and abs(v[0]) < _FILL_ABS:
                return float(v[0])
        if n in ds.attrs:
            try:
                return float(ds.attrs[n])
            except (TypeError, ValueError):
                pass
    return None


def _text(ds: xr.Dataset, name: str) -> str | None:
    """A character variable (char array or string scalar) as stripped text."""
    if name not in ds.variables:
        return None
    v = np.asarray(ds[name].values).ravel()
    parts = [x.decode("utf-8", "ignore") if isinstance(x, bytes) else str(x) for x in v]
    text = "".join(parts).strip().strip("\x00").strip()
    return text or None


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


# ----------------------------------------------------------------------------- site attributes
def site_code_from_files(met_path: Path, ds_list: list[xr.Dataset]) -> str:
    """Site code from a 'site_code' attribute, a PLUMBER2 file name, or a PALS dataset name."""
    for ds in ds_list:
        code = ds.attrs.get("site_code")
        if code:
            return str(code).strip()
    m = re.match(r"^([A-Z]{2}-[A-Za-z0-9]{3})_", met_path.name)
    if m:
        return m.group(1)
    for ds in ds_list:
        name = ds.attrs.get("PALS_dataset_name")
        if name and str(name) in PALS_NAMES:
            return PALS_NAMES[str(name)]
    stem = re.sub(r"(_met|_flux|_Met|_Flux)?\.nc$", "", met_path.name)
    base = re.sub(r"\.\d+(\.\d+)*$", "", stem)
    return PALS_NAMES.get(base, stem)


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
        _check_same_site(met, flux, met_path, flux_path)

    times, step, m_stamp, m_idx, f_idx = _align_times(met, flux, met_path, flux_path, stamp, notes)
    mf = _MetFile(met, met_path, m_idx)
    forcing = _required_forcing(mf, attrs)
    code = site_code_from_files(met_path, [d for d in (flux, met) if d is not None])
    try:
        info = site_info(code)
    except DataError:
        info = None
    lat, lon, elev = _site_position(met, flux, site_ds, info, code, met_path, attrs, warnings)
    _pressure_and_humidity(mf, forcing, times, elev, attrs)
    check_forcing(forcing, met_path, attrs, warnings)  # Tair/SWdown sanity before they feed other fills
    _precipitation(mf, forcing, attrs)
    forcing["CO2air"] = _co2(mf, times, attrs)
    igbp = _igbp(met, flux, site_ds, info, attrs, met_path, code)
    forcing["LAI"] = _lai(mf, site_ds, times, igbp, lat, attrs, notes)
    for name in FORCING_VARS:
        forcing[name] = fill_gaps(forcing[name], name, met_path, attrs)

    if flux is not None:
        fluxes, masks, origin, absent = _read_fluxes(flux, flux_path, f_idx, warnings)
    else:
        fluxes, masks, origin, absent = {}, {}, [], list(FLUX_VARS)

    attrs["site"] = info["site"] if info else code
    attrs["site_name"] = _site_name(met, flux, info, code, attrs)
    attrs["igbp"] = igbp
    attrs["pft_group"] = pft_group(igbp)
    attrs["latitude"], attrs["longitude"], attrs["elevation_m"] = float(lat), float(lon), float(elev)
    attrs["reference_height_m"], attrs["canopy_height_m"] = _heights(met, flux, site_ds, igbp, attrs)
    attrs.update(_soil_texture(site_ds))
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
        return _series(self.ds, var, self.path)[self.idx]

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


def _check_same_site(met: xr.Dataset, flux: xr.Dataset, met_path: Path, flux_path: Path) -> None:
    """A Flux file whose site code (or PALS dataset name) differs from the Met file's is an error."""
    codes = {str(d.attrs["site_code"]).strip() for d in (met, flux) if d.attrs.get("site_code")}
    pals = {str(d.attrs["PALS_dataset_name"]) for d in (met, flux) if d.attrs.get("PALS_dataset_name")}
    if len(codes) > 1 or len(pals) > 1:
        raise DataError(f"{flux_path}: Flux file belongs to another site than {met_path.name} "
                        f"({', '.join(sorted(codes | pals))})")


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


def _required_forcing(mf: _MetFile, attrs: dict) -> dict[str, np.ndarray]:
    """SWdown, LWdown, Tair and Wind (2 m wind when that is all there is), canonical units."""
    forcing: dict[str, np.ndarray] = {}
    for name in REQUIRED_FORCING:
        if mf.present(name) is None:
            if name == "Wind" and "Wind2" in mf.ds.variables and np.nanmax(np.abs(_series(mf.ds, "Wind2", mf.path))) > 0:
                forcing["Wind"] = mf.get("Wind", "m s-1", "Wind2")
                fill.add_filled(attrs, "Wind", "Wind2 (2 m wind) as given")
                continue
            raise DataError(f"{mf.path}: required variable {name} is missing")
        forcing[name] = mf.get(name, FORCING_VARS[name])
    return forcing


def _site_position(met, flux, site_ds, info, code: str, met_path: Path, attrs: dict, warnings: list):
    """(latitude, longitude, elevation_m) from the files, the catalogue standing in (and winning on disagreement)."""
    lat = _scalar(met, "latitude") or (_scalar(flux, "latitude") if flux is not None else None)
    lon = _scalar(met, "longitude") or (_scalar(flux, "longitude") if flux is not None else None)
    elev = None
    for d in (met, flux, site_ds):
        if d is not None and elev is None:
            elev = _scalar(d, "elevation")
    if lat is None and site_ds is not None:
        lat, lon = _scalar(site_ds, "latitude"), _scalar(site_ds, "longitude")
    if lat is None or lon is None:
        if info is None:
            raise DataError(f"{met_path}: no latitude/longitude in the file and site {code!r} is not in the catalogue")
        lat, lon = info["latitude"], info["longitude"]
        fill.add_filled(attrs, "latitude", "catalogue")
        fill.add_filled(attrs, "longitude", "catalogue")
    if info is not None and (abs(lat - info["latitude"]) > 0.1 or abs(lon - info["longitude"]) > 0.1):
        warnings.append(f"file position ({lat:.3f}, {lon:.3f}) disagrees with the catalogue "
                        f"({info['latitude']:.3f}, {info['longitude']:.3f}), catalogue used")
        lat, lon = info["latitude"], info["longitude"]
        fill.add_filled(attrs, "latitude", "catalogue (file value disagreed)")
        fill.add_filled(attrs, "longitude", "catalogue (file value disagreed)")
    if elev is None:
        if info is not None:
            elev = info["elevation_m"]
            fill.add_filled(attrs, "elevation_m", "catalogue")
        else:
            elev = 0.0
            fill.add_filled(attrs, "elevation_m", "unknown, 0 m assumed")
    return lat, lon, elev


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
        vals = to_canonical(_series(flux, name, fp)[f_idx], flux[name].attrs.get("units"), FLUX_VARS[name],
                            var=name, path=fp)
        if not np.isfinite(vals).any():
            if name in REQUIRED_FLUXES:
                raise DataError(f"{fp}: flux {name} is all missing (all-NaN)")
            absent.append(name)
            warnings.append(f"{name} in the file holds no data")
            continue
        fluxes[name] = vals
        if f"{name}_qc" in flux.variables:
            masks[name] = measured_from_qc(_series(flux, f"{name}_qc", fp)[f_idx], fdialect) & np.isfinite(vals)
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


def _site_name(met, flux, info, code: str, attrs: dict) -> str:
    """The files' site name, else the catalogue's, else the code."""
    for d in (flux, met):
        if d is not None and d.attrs.get("site_name"):
            return str(d.attrs["site_name"])
    if info:
        fill.add_filled(attrs, "site_name", "catalogue")
        return str(info["site_name"])
    return str(code)


def _heights(met, flux, site_ds, igbp: str, attrs: dict) -> tuple[float, float]:
    """(reference height, canopy height) in m from the files, IGBP defaults standing in."""
    ref_h = _first_scalar([met, flux, site_ds], "reference_height", "reference_height_v")
    can_h = _first_scalar([met, flux, site_ds], "canopy_height")
    d_can, d_ref = fill.default_heights_m(igbp)
    if can_h is None:
        can_h = d_can
        fill.add_filled(attrs, "canopy_height_m", f"IGBP default ({igbp})")
    if ref_h is None:
        ref_h = max(d_ref, can_h + 2.0)
        fill.add_filled(attrs, "reference_height_m", f"IGBP default ({igbp})")
    return float(ref_h), float(can_h)


#: site-file variables holding sand and clay mass fractions (PLUMBER2 ``_site.nc``: per soil layer)
_TEXTURE_VARS = {"soil_sand_fraction": ("soil_wf_sand", "sand_fraction", "sand"),
                 "soil_clay_fraction": ("soil_wf_clay", "clay_fraction", "clay")}


def _soil_texture(site_ds) -> dict[str, float]:
    """Sand/clay mass fractions (mean over the file's soil layers; percentages scaled) where the site file has them."""
    out: dict[str, float] = {}
    if site_ds is None:
        return out
    for attr, names in _TEXTURE_VARS.items():
        for name in names:
            if name in site_ds.variables:
                v = np.asarray(site_ds[name].values, dtype=float).ravel()
                v = v[np.isfinite(v) & (v >= 0)]
                if v.size:
                    m = float(v.mean())
                    out[attr] = m / 100.0 if m > 1.0 else m
                break
    return out


def _first_scalar(dss: list, *names: str) -> float | None:
    for d in dss:
        if d is not None:
            v = _scalar(d, *names)
            if v is not None and v > 0:
                return v
    return None


def _igbp(met, flux, site_ds, info, attrs, path, code) -> str:
    for d in (met, flux):
        if d is not None:
            t = _text(d, "IGBP_veg_short")
            if t:
                return t.upper()
    if site_ds is not None and "IGBP_classification" in site_ds.variables:
        num = int(np.asarray(site_ds["IGBP_classification"].values).ravel()[0])
        if num in IGBP_NUMBERS:
            fill.add_filled(attrs, "igbp", "site file IGBP_classification")
            return IGBP_NUMBERS[num]
    if info is not None:
        fill.add_filled(attrs, "igbp", "catalogue")
        return info["igbp"]
    raise DataError(f"{path}: no IGBP class in the files and site code {code!r} is not in the catalogue")


def read_met(met_path: str | Path, site_path: str | Path | None = None, *, stamp: str = "auto") -> xr.Dataset:
    """Forcing only: :func:`read_site` without a Flux file (fluxes all-NaN, unmeasured)."""
    return read_site(met_path, None, site_path, stamp=stamp)
