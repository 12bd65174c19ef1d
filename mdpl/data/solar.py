"""Solar geometry: declination, equation of time, zenith angle, top-of-atmosphere irradiance.

Spencer (1971) Fourier series for declination, equation of time and the
Earth-Sun distance factor; all functions are vectorised over numpy arrays of
``datetime64`` (UTC). Step means are taken by averaging sub-samples across
the step, so a half-hourly or hourly series of TOA irradiance is exact to
within a fraction of a W m-2 near sunrise/sunset.
"""

from __future__ import annotations

import numpy as np

#: solar constant, W m-2 (Kopp & Lean 2011)
SOLAR_CONSTANT_W_M2 = 1361.0


def _day_angle(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional day of year (0-based) and Spencer's day angle (rad) of UTC ``times``."""
    t = np.asarray(times, dtype="datetime64[ns]")
    year_start = t.astype("datetime64[Y]").astype("datetime64[ns]")
    doy = (t - year_start) / np.timedelta64(1, "D")
    return doy, 2.0 * np.pi * doy / 365.0


def declination_rad(times: np.ndarray) -> np.ndarray:
    """Solar declination (rad) at UTC ``times`` (Spencer 1971)."""
    _, g = _day_angle(times)
    return (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )


def equation_of_time_min(times: np.ndarray) -> np.ndarray:
    """Equation of time (minutes; apparent minus mean solar time) at UTC ``times``."""
    _, g = _day_angle(times)
    return 229.18 * (
        0.000075 + 0.001868 * np.cos(g) - 0.032077 * np.sin(g) - 0.014615 * np.cos(2 * g) - 0.040849 * np.sin(2 * g)
    )


def earth_sun_factor(times: np.ndarray) -> np.ndarray:
    """(mean / actual Earth-Sun distance)^2, the eccentricity factor of TOA irradiance."""
    _, g = _day_angle(times)
    return 1.000110 + 0.034221 * np.cos(g) + 0.001280 * np.sin(g) + 0.000719 * np.cos(2 * g) + 0.000077 * np.sin(2 * g)


def hour_angle_rad(times: np.ndarray, longitude: float) -> np.ndarray:
    """Hour angle (rad; 0 at local solar noon, positive in the afternoon)."""
    t = np.asarray(times, dtype="datetime64[ns]")
    utc_h = (t - t.astype("datetime64[D]").astype("datetime64[ns]")) / np.timedelta64(1, "h")
    solar_h = utc_h + longitude / 15.0 + equation_of_time_min(t) / 60.0
    return np.deg2rad(15.0 * (solar_h - 12.0))


def cos_zenith(times: np.ndarray, latitude: float, longitude: float) -> np.ndarray:
    """Cosine of the solar zenith angle at UTC instants ``times`` (negative at night)."""
    lat = np.deg2rad(latitude)
    dec = declination_rad(times)
    h = hour_angle_rad(times, longitude)
    return np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(h)


def toa_irradiance(times: np.ndarray, latitude: float, longitude: float) -> np.ndarray:
    """Instantaneous top-of-atmosphere irradiance on a horizontal plane (W m-2) at UTC ``times``."""
    mu = cos_zenith(times, latitude, longitude)
    return SOLAR_CONSTANT_W_M2 * earth_sun_factor(times) * np.maximum(mu, 0.0)


def toa_step_mean(
    step_start: np.ndarray, step_s: float, latitude: float, longitude: float, n_sub: int = 6
) -> np.ndarray:
    """Mean TOA irradiance (W m-2) over each step that starts at ``step_start`` and lasts ``step_s``."""
    t0 = np.asarray(step_start, dtype="datetime64[ns]")
    offsets = ((np.arange(n_sub) + 0.5) / n_sub * step_s * 1e9).astype("timedelta64[ns]")
    sub = t0[:, None] + offsets[None, :]
    return toa_irradiance(sub.ravel(), latitude, longitude).reshape(sub.shape).mean(axis=1)


def cos_zenith_step_mean(
    step_start: np.ndarray, step_s: float, latitude: float, longitude: float, n_sub: int = 6
) -> np.ndarray:
    """Daylight-weighted mean of max(cos zenith, 0) over each step."""
    t0 = np.asarray(step_start, dtype="datetime64[ns]")
    offsets = ((np.arange(n_sub) + 0.5) / n_sub * step_s * 1e9).astype("timedelta64[ns]")
    sub = t0[:, None] + offsets[None, :]
    mu = np.maximum(cos_zenith(sub.ravel(), latitude, longitude), 0.0).reshape(sub.shape)
    return mu.mean(axis=1)
