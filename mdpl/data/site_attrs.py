"""Who and where a site is: code, position, name, IGBP class, heights and soil texture.

Read from the Met, Flux and site files where they hold them, the site
catalogue (:mod:`mdpl.data.catalogue`) standing in (and winning where a
file's position disagrees with it), IGBP defaults last. Every value that did
not come from the files is recorded with :func:`mdpl.data.fill.add_filled`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import xarray as xr

from mdpl.data import fill
from mdpl.data.catalogue import PALS_NAMES
from mdpl.data.netcdf import first_scalar, scalar, text
from mdpl.errors import DataError

#: IGBP class numbers (1-17) as used in the CN-Cng site file
IGBP_NUMBERS = {1: "ENF", 2: "EBF", 3: "DNF", 4: "DBF", 5: "MF", 6: "CSH", 7: "OSH", 8: "WSA", 9: "SAV",
                10: "GRA", 11: "WET", 12: "CRO", 13: "URB", 14: "CVM", 15: "SNO", 16: "BSV", 17: "WAT"}


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


def check_same_site(met: xr.Dataset, flux: xr.Dataset, met_path: Path, flux_path: Path) -> None:
    """A Flux file whose site code (or PALS dataset name) differs from the Met file's is an error."""
    codes = {str(d.attrs["site_code"]).strip() for d in (met, flux) if d.attrs.get("site_code")}
    pals = {str(d.attrs["PALS_dataset_name"]) for d in (met, flux) if d.attrs.get("PALS_dataset_name")}
    if len(codes) > 1 or len(pals) > 1:
        raise DataError(f"{flux_path}: Flux file belongs to another site than {met_path.name} "
                        f"({', '.join(sorted(codes | pals))})")


def site_position(met, flux, site_ds, info, code: str, met_path: Path, attrs: dict, warnings: list):
    """(latitude, longitude, elevation_m) from the files, the catalogue standing in (and winning on disagreement)."""
    lat = scalar(met, "latitude") or (scalar(flux, "latitude") if flux is not None else None)
    lon = scalar(met, "longitude") or (scalar(flux, "longitude") if flux is not None else None)
    elev = None
    for d in (met, flux, site_ds):
        if d is not None and elev is None:
            elev = scalar(d, "elevation")
    if lat is None and site_ds is not None:
        lat, lon = scalar(site_ds, "latitude"), scalar(site_ds, "longitude")
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


def site_name(met, flux, info, code: str, attrs: dict) -> str:
    """The files' site name, else the catalogue's, else the code."""
    for d in (flux, met):
        if d is not None and d.attrs.get("site_name"):
            return str(d.attrs["site_name"])
    if info:
        fill.add_filled(attrs, "site_name", "catalogue")
        return str(info["site_name"])
    return str(code)


def heights(met, flux, site_ds, igbp: str, attrs: dict) -> tuple[float, float]:
    """(reference height, canopy height) in m from the files, IGBP defaults standing in."""
    ref_h = first_scalar([met, flux, site_ds], "reference_height", "reference_height_v")
    can_h = first_scalar([met, flux, site_ds], "canopy_height")
    d_can, d_ref = fill.default_heights_m(igbp)
    if can_h is None:
        can_h = d_can
        fill.add_filled(attrs, "canopy_height_m", f"IGBP default ({igbp})")
    if ref_h is None:
        ref_h = max(d_ref, can_h + 2.0)
        fill.add_filled(attrs, "reference_height_m", f"IGBP default ({igbp})")
    return float(ref_h), float(can_h)


#: site-file variables holding sand and clay mass fractions (PLUMBER2 ``_site.nc``: per soil layer)
TEXTURE_VARS = {"soil_sand_fraction": ("soil_wf_sand", "sand_fraction", "sand"),
                 "soil_clay_fraction": ("soil_wf_clay", "clay_fraction", "clay")}


def soil_texture(site_ds) -> dict[str, float]:
    """Sand/clay mass fractions (mean over the file's soil layers; percentages scaled) where the site file has them."""
    out: dict[str, float] = {}
    if site_ds is None:
        return out
    for attr, names in TEXTURE_VARS.items():
        for name in names:
            if name in site_ds.variables:
                v = np.asarray(site_ds[name].values, dtype=float).ravel()
                v = v[np.isfinite(v) & (v >= 0)]
                if v.size:
                    m = float(v.mean())
                    out[attr] = m / 100.0 if m > 1.0 else m
                break
    return out


def igbp_class(met, flux, site_ds, info, attrs, path, code) -> str:
    for d in (met, flux):
        if d is not None:
            t = text(d, "IGBP_veg_short")
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
