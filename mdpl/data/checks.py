"""Sanity checks of a site's forcing and fluxes in canonical units: impossible values are errors naming the file.

Small faults are repaired and noted in ``attrs['filled']`` (short forcing
gaps interpolated, radiation noise below zero clipped); doubts that are not
errors go to the reader's warnings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.data import fill
from mdpl.errors import DataError

#: forcing gaps longer than this fraction of the record are an error, shorter ones are interpolated
MAX_FORCING_GAP_FRACTION = 0.2


def fill_gaps(values: np.ndarray, name: str, path: Path, attrs: dict) -> np.ndarray:
    """Short forcing gaps interpolated linearly (noted in ``attrs``); an all-missing or mostly missing series is an error."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    if bad.all():
        raise DataError(f"{path}: forcing {name} is all missing (all-NaN)")
    if bad.mean() > MAX_FORCING_GAP_FRACTION:
        raise DataError(f"{path}: forcing {name} has {bad.mean():.0%} missing steps (gap-filled forcing expected)")
    out = pd.Series(values).interpolate(limit_direction="both").to_numpy()
    fill.add_filled(attrs, f"{name}_gaps", f"linear interpolation over {int(bad.sum())} missing steps")
    return out


def check_forcing(forcing: dict, path: Path, attrs: dict, warnings: list) -> None:
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


def check_precip(p: np.ndarray, name: str, path: Path) -> None:
    """Negative or impossibly heavy precipitation (kg m-2 s-1) is an error naming the file."""
    if np.nanmin(p) < -1e-6:
        raise DataError(f"{path}: negative {name} (min {np.nanmin(p):.3g} kg m-2 s-1)")
    if np.nanmax(p) > 0.1:
        raise DataError(f"{path}: {name} above 0.1 kg m-2 s-1 (360 mm/h); wrong units?")


def check_fluxes(fluxes: dict, path: Path) -> None:
    """Energy fluxes beyond +-2000 W m-2 or carbon fluxes beyond +-200 umol m-2 s-1 mean wrong units: an error."""
    for name in ("Qle", "Qh", "Qle_cor", "Qh_cor", "Rnet", "Qg"):
        v = fluxes.get(name)
        if v is not None and (np.nanmax(np.abs(v)) > 2000):
            raise DataError(f"{path}: {name} beyond +-2000 W m-2 (max |x| {np.nanmax(np.abs(v)):.0f}); wrong units?")
    for name in ("NEE", "GPP"):
        v = fluxes.get(name)
        if v is not None and np.nanmax(np.abs(v)) > 200:
            raise DataError(f"{path}: {name} beyond +-200 umol m-2 s-1 (max |x| {np.nanmax(np.abs(v)):.0f}); wrong units?")


def check_humidity(forcing: dict, attrs: dict, warnings: list) -> None:
    """Flag (not fail) humidity that never comes near saturation: suspect sensor or conversion."""
    rh = fill.rh_from_qair(forcing["Qair"], forcing["Tair"], forcing["Psurf"])
    p99 = float(np.nanpercentile(rh, 99))
    if p99 < 0.4:
        warnings.append(f"Qair implausibly dry: 99th-percentile relative humidity {p99:.0%}")
