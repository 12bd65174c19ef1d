"""Fill what a forcing file lacks, the way the land-surface modelling community does.

- :func:`split_precip`: total precipitation -> rain and snow by air temperature
  (linear ramp between :data:`SNOW_RAMP_K`, as e.g. in CLM and JULES forcing
  pre-processing).
- :func:`co2_series`: CO2air from the NOAA Mauna Loa annual means
  (``resources/co2_annmean_mlo.csv``), linear between mid-year values.
- :func:`lai_climatology`: a per-IGBP seasonal LAI climatology (minimum,
  maximum, month of peak in the northern hemisphere; shifted by half a year
  south of the equator; flat within 10 degrees of it for evergreen classes).
- :func:`default_heights_m`: canopy and reference height by IGBP class.
- Humidity helpers (:func:`saturation_vapour_pressure_pa`, :func:`qair_from_rh`,
  :func:`rh_from_qair`).

Every filler returns plain numpy arrays; the caller records what it filled in
``attrs['filled']`` (see :func:`add_filled`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

#: all snow at or below the first, all rain at or above the second air temperature (K)
SNOW_RAMP_K: tuple[float, float] = (272.15, 274.15)

#: IGBP -> (LAI min, LAI max, day of year of the peak in the northern hemisphere), m2 m-2
LAI_CLIMATOLOGY: dict[str, tuple[float, float, float]] = {
    "ENF": (2.5, 4.0, 200.0),
    "EBF": (4.5, 5.5, 200.0),
    "DNF": (0.3, 3.0, 200.0),
    "DBF": (0.5, 5.0, 200.0),
    "MF": (1.5, 4.5, 200.0),
    "CSH": (0.6, 1.8, 190.0),
    "OSH": (0.3, 1.0, 190.0),
    "WSA": (0.8, 2.5, 220.0),
    "SAV": (0.4, 1.8, 230.0),
    "GRA": (0.4, 2.5, 195.0),
    "WET": (0.5, 3.0, 200.0),
    "CRO": (0.3, 3.5, 190.0),
    "CVM": (0.4, 3.0, 195.0),
    "BSV": (0.1, 0.3, 200.0),
    "SNO": (0.0, 0.0, 200.0),
    "URB": (0.2, 0.8, 200.0),
}

#: IGBP -> typical canopy height, m (used when neither file nor catalogue knows)
CANOPY_HEIGHT_M: dict[str, float] = {
    "ENF": 15.0, "EBF": 25.0, "DNF": 12.0, "DBF": 20.0, "MF": 18.0, "CSH": 2.0, "OSH": 1.0,
    "WSA": 8.0, "SAV": 6.0, "GRA": 0.3, "WET": 0.5, "CRO": 0.8, "CVM": 1.0, "BSV": 0.2,
}

_EVERGREEN = {"EBF", "ENF"}


def add_filled(attrs: dict, what: str, how: str) -> None:
    """Append ``what=how`` to the semicolon-separated ``attrs['filled']`` note."""
    notes = [n for n in str(attrs.get("filled", "")).split(";") if n]
    notes = [n for n in notes if not n.startswith(f"{what}=")]
    notes.append(f"{what}={how}")
    attrs["filled"] = ";".join(notes)


def filled_dict(attrs: dict) -> dict[str, str]:
    """Parse ``attrs['filled']`` into ``{what: how}``."""
    out = {}
    for note in str(attrs.get("filled", "")).split(";"):
        if "=" in note:
            k, v = note.split("=", 1)
            out[k] = v
    return out


def split_precip(precip_kg_m2_s: np.ndarray, tair_k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split total precipitation into (rain, snow), kg m-2 s-1, by a linear air-temperature ramp."""
    lo, hi = SNOW_RAMP_K
    snow_frac = np.clip((hi - np.asarray(tair_k, dtype=float)) / (hi - lo), 0.0, 1.0)
    p = np.asarray(precip_kg_m2_s, dtype=float)
    snow = p * snow_frac
    return p - snow, snow


@lru_cache(maxsize=1)
def _co2_table() -> pd.DataFrame:
    with resources.files("mdpl.data.resources").joinpath("co2_annmean_mlo.csv").open() as fh:
        return pd.read_csv(fh, comment="#")


def co2_series(times: np.ndarray) -> np.ndarray:
    """Atmospheric CO2 (ppm) at ``times`` from the NOAA Mauna Loa annual means.

    Annual means sit at 1 July and are joined linearly; before/after the table
    the trend of its first/last ten years is extrapolated.
    """
    tab = _co2_table()
    yrs = tab["year"].to_numpy(dtype=float) + 0.5
    ppm = tab["co2_ppm"].to_numpy(dtype=float)
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    frac_year = t.year + (t.day_of_year - 1 + t.hour / 24.0) / np.where(t.is_leap_year, 366.0, 365.0)
    frac_year = np.asarray(frac_year, dtype=float)
    out = np.interp(frac_year, yrs, ppm)
    lo_slope = (ppm[10] - ppm[0]) / (yrs[10] - yrs[0])
    hi_slope = (ppm[-1] - ppm[-11]) / (yrs[-1] - yrs[-11])
    out = np.where(frac_year < yrs[0], ppm[0] + lo_slope * (frac_year - yrs[0]), out)
    out = np.where(frac_year > yrs[-1], ppm[-1] + hi_slope * (frac_year - yrs[-1]), out)
    return out


def lai_climatology(times: np.ndarray, igbp: str, latitude: float) -> np.ndarray:
    """Seasonal LAI (m2 m-2) of an IGBP class at ``times``, hemisphere aware.

    A smooth bump ``min + (max-min) * ((1+cos(2 pi (doy-peak)/365))/2)^2``,
    peak shifted by half a year south of the equator; evergreen classes within
    10 degrees of the equator are flat at the mean.
    """
    lai_min, lai_max, peak = LAI_CLIMATOLOGY.get(str(igbp).upper(), (0.5, 3.0, 200.0))
    t = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    doy = np.asarray(t.day_of_year, dtype=float) + np.asarray(t.hour, dtype=float) / 24.0
    if latitude < 0:
        peak = (peak + 182.5) % 365.0
    if str(igbp).upper() in _EVERGREEN and abs(latitude) < 10.0:
        return np.full(doy.shape, 0.5 * (lai_min + lai_max))
    shape = ((1.0 + np.cos(2.0 * np.pi * (doy - peak) / 365.0)) / 2.0) ** 2
    return lai_min + (lai_max - lai_min) * shape


def default_heights_m(igbp: str) -> tuple[float, float]:
    """(canopy height, measurement reference height) in m for an IGBP class."""
    hc = CANOPY_HEIGHT_M.get(str(igbp).upper(), 1.0)
    return hc, hc + max(2.0, 0.5 * hc)


def saturation_vapour_pressure_pa(tair_k: np.ndarray) -> np.ndarray:
    """Saturation vapour pressure over water (Pa), Tetens/Murray form (Buck-like accuracy above -20 C)."""
    tc = np.asarray(tair_k, dtype=float) - 273.15
    return 610.78 * np.exp(17.27 * tc / (tc + 237.3))


def qair_from_rh(rh: np.ndarray, tair_k: np.ndarray, psurf_pa: np.ndarray) -> np.ndarray:
    """Specific humidity (kg kg-1) from relative humidity (0-1), air temperature and pressure."""
    e = np.asarray(rh, dtype=float) * saturation_vapour_pressure_pa(tair_k)
    return 0.622 * e / (np.asarray(psurf_pa, dtype=float) - 0.378 * e)


def vapour_pressure_pa(qair: np.ndarray, psurf_pa: np.ndarray) -> np.ndarray:
    """Vapour pressure (Pa) from specific humidity (kg kg-1) and pressure (Pa)."""
    q = np.asarray(qair, dtype=float)
    return q * np.asarray(psurf_pa, dtype=float) / (0.622 + 0.378 * q)


def rh_from_qair(qair: np.ndarray, tair_k: np.ndarray, psurf_pa: np.ndarray) -> np.ndarray:
    """Relative humidity (0-1, not clipped) from specific humidity, air temperature and pressure."""
    return vapour_pressure_pa(qair, psurf_pa) / saturation_vapour_pressure_pa(tair_k)


def barometric_pressure_pa(elevation_m: float) -> float:
    """Standard-atmosphere surface pressure (Pa) at ``elevation_m`` (ICAO barometric formula)."""
    return 101325.0 * (1.0 - 2.25577e-5 * float(elevation_m)) ** 5.25588
