"""Unit spellings found in ALMA flux-tower files, and conversion to the canonical CF units.

Files spell the same unit many ways (``W/m2``, ``W/m^2``, ``W m-2``) and a few
use other units outright (PALS ``mm/s`` for precipitation, ``hPa`` for VPD,
``%`` for RH). :func:`to_canonical` converts or raises :class:`DataError`
naming the file, variable and unit.
"""

from __future__ import annotations

import numpy as np

from mdpl.errors import DataError

_EMPTY = {"", "1", "-", "unitless", "none", "fraction"}

#: canonical unit -> {normalised spelling: (scale, offset)}; value_canonical = value * scale + offset
CONVERSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "W m-2": {"w/m2": (1, 0), "wm-2": (1, 0), "w.m-2": (1, 0)},
    "K": {"k": (1, 0), "kelvin": (1, 0), "degk": (1, 0),
          "c": (1, 273.15), "degc": (1, 273.15), "°c": (1, 273.15), "deg_c": (1, 273.15),
          "celsius": (1, 273.15), "degreesc": (1, 273.15), "degree_celsius": (1, 273.15)},
    "kg kg-1": {"kg/kg": (1, 0), "kgkg-1": (1, 0), "g/kg": (1e-3, 0), "gkg-1": (1e-3, 0), **{e: (1, 0) for e in _EMPTY}},
    "Pa": {"pa": (1, 0), "hpa": (100, 0), "mbar": (100, 0), "mb": (100, 0), "kpa": (1000, 0)},
    "m s-1": {"m/s": (1, 0), "ms-1": (1, 0), "m.s-1": (1, 0)},
    "kg m-2 s-1": {"kg/m2/s": (1, 0), "kgm-2s-1": (1, 0), "kg/m2s": (1, 0), "mm/s": (1, 0), "mms-1": (1, 0),
                   "mm/h": (1 / 3600, 0), "mm/hr": (1 / 3600, 0)},
    "ppm": {"ppm": (1, 0), "ppmv": (1, 0), "umol/mol": (1, 0), "µmol/mol": (1, 0), "umolmol-1": (1, 0)},
    "m2 m-2": {"m2/m2": (1, 0), "m2m-2": (1, 0), **{e: (1, 0) for e in _EMPTY}},
    "umol m-2 s-1": {"umol/m2/s": (1, 0), "umolm-2s-1": (1, 0), "µmol/m2/s": (1, 0), "umol/m2s": (1, 0),
                     "micromol/m2/s": (1, 0), "µmolm-2s-1": (1, 0)},
    "1": {"%": (0.01, 0), "percent": (0.01, 0), **{e: (1, 0) for e in _EMPTY}},
    "m": {"m": (1, 0), "meters": (1, 0), "metres": (1, 0)},
}


def normalise(units: str | None) -> str:
    """Lower-case, no blanks, no ``^``/``**``: 'W/m^2' -> 'w/m2', 'W m-2' -> 'wm-2'."""
    return str(units or "").strip().lower().replace(" ", "").replace("^", "").replace("**", "")


def to_canonical(values: np.ndarray, units: str | None, canonical: str, *, var: str, path: object) -> np.ndarray:
    """Convert ``values`` in ``units`` to ``canonical``; a missing units attribute means canonical already."""
    table = CONVERSIONS[canonical]
    key = normalise(units)
    if units is None or key in ("", "none"):
        return np.asarray(values, dtype=np.float64)
    if key == normalise(canonical):
        return np.asarray(values, dtype=np.float64)
    if key not in table:
        raise DataError(f"{path}: variable {var} has units {units!r}, which cannot be converted to {canonical!r}")
    scale, offset = table[key]
    return np.asarray(values, dtype=np.float64) * scale + offset
