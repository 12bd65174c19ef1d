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

from mdpl.data import fill, solar
from mdpl.data.catalogue import PALS_NAMES, pft_group, site_info
from mdpl.data.schema import FLUX_VARS, FORCING_VARS, assemble
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
#: forcing gaps longer than this fraction of the record are an error, shorter ones are interpolated
_MAX_FORCING_GAP_FRACTION = 0.2


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


# ----------------------------------------------------------------------------- dialect and time
def detect_dialect(ds: xr.Dataset, path: Path) -> str:
    """'pals' for PALS Fluxnet 1.4 files, else 'plumber2' (PLUMBER2 and generic ALMA)."""
    if "PALS_dataset_name" in ds.attrs or re.search(r"Fluxnet\.1\.4", path.name):
        return "pals"
    for v in ds.data_vars:
        if v.endswith("_qc") and re.search(r"1\s*-\s*ok", str(ds[v].attrs.get("values", "")), re.I):
            return "pals"
    return "plumber2"


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
    _check_forcing(forcing, met_path, attrs, warnings)  # Tair/SWdown sanity before they feed other fills
    _precipitation(mf, forcing, attrs)
    forcing["CO2air"] = _co2(mf, times, attrs)
    igbp = _igbp(met, flux, site_ds, info, attrs, met_path, code)
    forcing["LAI"] = _lai(mf, site_ds, times, igbp, lat, attrs, notes)
    for name in FORCING_VARS:
        forcing[name] = _fill_gaps(forcing[name], name, met_path, attrs)

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
    _check_humidity(forcing, attrs, warnings)
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
        _check_precip(total, which, mf.path)
        forcing["Rainf"], forcing["Snowf"] = fill.split_precip(np.clip(total, 0, None), forcing["Tair"])
        lo, hi = fill.SNOW_RAMP_K
        fill.add_filled(attrs, "Snowf", f"{which} (total) split by air temperature ({lo}-{hi} K ramp)")
    else:
        raise DataError(f"{mf.path}: required variable Precip (or Rainf) is missing")
    for k in ("Rainf", "Snowf"):
        _check_precip(forcing[k], k, mf.path)
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
    _check_fluxes(fluxes, fp)
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


def _fill_gaps(values: np.ndarray, name: str, path: Path, attrs: dict) -> np.ndarray:
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    if bad.all():
        raise DataError(f"{path}: forcing {name} is all missing (all-NaN)")
    if bad.mean() > _MAX_FORCING_GAP_FRACTION:
        raise DataError(f"{path}: forcing {name} has {bad.mean():.0%} missing steps (gap-filled forcing expected)")
    out = pd.Series(values).interpolate(limit_direction="both").to_numpy()
    fill.add_filled(attrs, f"{name}_gaps", f"linear interpolation over {int(bad.sum())} missing steps")
    return out


def _check_forcing(forcing: dict, path: Path, attrs: dict, warnings: list) -> None:
    """Impossible units or values in the forcing are errors; tiny radiation noise is clipped."""
    t = forcing["Tair"]
    med = np.nanmedian(t)
    if med < 150:
        raise DataError(f"{path}: Tair median {med:.1f} K is impossible (apparently degrees Celsius labelled K)")
    if np.nanmin(t) < 180 or np.nanmax(t) > 340:
        raise DataError(f"{path}: Tair outside 180-340 K (min {np.nanmin(t):.1f}, max {np.nanmax(t):.1f})")
    sw = forcing["SWdown"]
    if np.nanmin(sw) < -10:
        raise DataError(f"{path}: negative SWdown beyond noise (min {np.nanmin(sw):.1f} W m-2)")
    if np.nanmax(sw) > 1500:
        raise DataError(f"{path}: SWdown above 1500 W m-2 (max {np.nanmax(sw):.0f}); wrong units?")
    if np.nanmin(sw) < 0:
        forcing["SWdown"] = np.where(sw < 0, 0.0, sw)
        fill.add_filled(attrs, "SWdown_negative", "small negative night values (noise) set to 0")
    lw = forcing["LWdown"]
    if np.nanmin(lw) < 40 or np.nanmax(lw) > 700:
        raise DataError(f"{path}: LWdown outside 40-700 W m-2 (min {np.nanmin(lw):.0f}, max {np.nanmax(lw):.0f})")
    q = forcing["Qair"]
    if np.nanmin(q) < 0 or np.nanmax(q) > 0.06:
        raise DataError(f"{path}: Qair outside 0-0.06 kg kg-1 (max {np.nanmax(q):.3g}); g/kg labelled kg/kg?")
    p = forcing["Psurf"]
    if np.nanmin(p) < 4e4 or np.nanmax(p) > 1.1e5:
        raise DataError(f"{path}: Psurf outside 40-110 kPa (min {np.nanmin(p):.0f} Pa); hPa labelled Pa?")
    w = forcing["Wind"]
    if np.nanmin(w) < 0 or np.nanmax(w) > 75:
        raise DataError(f"{path}: Wind outside 0-75 m s-1 (min {np.nanmin(w):.2f}, max {np.nanmax(w):.1f})")


def _check_precip(p: np.ndarray, name: str, path: Path) -> None:
    if np.nanmin(p) < -1e-6:
        raise DataError(f"{path}: negative {name} (min {np.nanmin(p):.3g} kg m-2 s-1)")
    if np.nanmax(p) > 0.1:
        raise DataError(f"{path}: {name} above 0.1 kg m-2 s-1 (360 mm/h); wrong units?")


def _check_fluxes(fluxes: dict, path: Path) -> None:
    for name in ("Qle", "Qh", "Qle_cor", "Qh_cor", "Rnet", "Qg"):
        v = fluxes.get(name)
        if v is not None and (np.nanmax(np.abs(v)) > 2000):
            raise DataError(f"{path}: {name} beyond +-2000 W m-2 (max |x| {np.nanmax(np.abs(v)):.0f}); wrong units?")
    for name in ("NEE", "GPP"):
        v = fluxes.get(name)
        if v is not None and np.nanmax(np.abs(v)) > 200:
            raise DataError(f"{path}: {name} beyond +-200 umol m-2 s-1 (max |x| {np.nanmax(np.abs(v)):.0f}); wrong units?")


def _check_humidity(forcing: dict, attrs: dict, warnings: list) -> None:
    """Flag (not fail) humidity that never comes near saturation: suspect sensor or conversion."""
    rh = fill.rh_from_qair(forcing["Qair"], forcing["Tair"], forcing["Psurf"])
    p99 = float(np.nanpercentile(rh, 99))
    if p99 < 0.4:
        warnings.append(f"Qair implausibly dry: 99th-percentile relative humidity {p99:.0%}")


def read_met(met_path: str | Path, site_path: str | Path | None = None, *, stamp: str = "auto") -> xr.Dataset:
    """Forcing only: :func:`read_site` without a Flux file (fluxes all-NaN, unmeasured)."""
    return read_site(met_path, None, site_path, stamp=stamp)
