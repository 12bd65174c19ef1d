"""A stochastic weather generator: realistic sub-daily forcing for any site, from a seed.

The embedded default of the project: a fresh machine has no flux-tower files,
so every stage can run on synthetic twins of the study sites. The generator
returns the same canonical Dataset as the reader (:mod:`mdpl.data.schema`),
forcing only: flux variables are all-NaN with all-False ``_measured`` masks
(the observations of the twin experiment come later, from the land model).

Physics, step by step (all vectorised over time):

- Wet/dry days: a two-state Markov chain whose stationary wet-day fraction
  follows the seasonal rainfall cycle; wet-day totals are gamma distributed;
  each day's rain falls in one storm of random start and length.
- Cloud fraction: a daily latent AR(1) process through a logistic link, much
  cloudier on wet days, plus sub-daily AR(1) noise.
- SWdown: step-mean clear-sky irradiance (top-of-atmosphere irradiance from
  solar geometry, :mod:`mdpl.data.solar`, times a Beer-law transmissivity
  with Kasten-Young air mass, pressure corrected) reduced by clouds after
  Kasten & Czeplak (1980): ``1 - 0.75 c^3.4``. Exactly zero at night.
- Tair: annual mean + seasonal cosine (warmest ~20 July in the north, half a
  year later in the south) + synoptic AR(1) anomalies + a diurnal cycle
  (maximum mid-afternoon) damped by clouds; wet days are cooler.
- Humidity: the day's vapour pressure is fixed from a daily relative humidity
  (AR(1) around the climate's mean, moister on wet days) at the daily mean
  temperature, so RH swings inversely with the diurnal temperature cycle;
  RH is bounded to [0.05, 1] and Qair follows from vapour pressure and Psurf.
- LWdown: Brutsaert (1975) clear-sky emissivity ``1.24 (e/T)^(1/7)`` (e in
  hPa) with the Crawford & Duchon (1999) cloud correction
  ``eps = clf + (1 - clf) eps_clear``, where ``clf = 1 - SWdown/SWclear`` is
  the solar attenuation by the same clouds (day and night alike).
- Wind: daily log-normal AR(1) with an afternoon maximum and gusty noise.
- Psurf: ICAO barometric pressure at the site elevation + synoptic AR(1)
  anomalies + the semidiurnal atmospheric tide.
- Snow vs rain: :func:`mdpl.data.fill.split_precip` (air-temperature ramp).
- CO2air: NOAA Mauna Loa annual series; LAI: per-IGBP seasonal climatology.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.signal import lfilter

from mdpl.data import fill, solar
from mdpl.data.catalogue import pft_group, site_info
from mdpl.data.schema import assemble

STEFAN_BOLTZMANN = 5.670374e-8  # W m-2 K-4
DAY_S = 86400.0


@dataclass(frozen=True)
class Climate:
    """Climate of a synthetic site. Temperatures in K, precipitation in mm per year.

    ``precip_peak_doy`` is the day of year of the rainiest season and
    ``precip_seasonality`` (0-1) how strongly the wet-day probability follows it.
    ``warmest_doy`` defaults from the hemisphere (see :meth:`from_latitude`).
    """

    tair_mean_k: float = 283.15
    tair_seasonal_amp_k: float = 9.0  # half the warmest-minus-coldest month difference
    tair_diurnal_amp_k: float = 5.0  # half the clear-sky daily range
    tair_synoptic_sd_k: float = 2.5  # sd of day-to-day anomalies
    warmest_doy: float = 200.0
    rh_mean: float = 0.72  # 0-1
    precip_mm_yr: float = 800.0
    wet_day_fraction: float = 0.35
    wet_persistence: float = 0.4  # lag-1 correlation of the wet/dry Markov chain
    precip_seasonality: float = 0.0  # 0-1
    precip_peak_doy: float = 200.0
    cloud_dry_mean: float = 0.35  # mean cloud fraction on dry days
    wind_mean_m_s: float = 3.0
    wind_cv: float = 0.4  # coefficient of variation of daily mean wind

    @classmethod
    def from_latitude(cls, latitude: float, elevation_m: float = 0.0, **overrides) -> "Climate":
        """A plausible climate from latitude and elevation alone (zonal means, lapse rate 6.5 K/km)."""
        a = abs(float(latitude))
        tmean = 300.15 - 0.55 * max(a - 12.0, 0.0) - 6.5e-3 * float(elevation_m)
        kw = dict(
            tair_mean_k=tmean,
            tair_seasonal_amp_k=0.5 + 0.22 * a,
            tair_diurnal_amp_k=4.0 + 0.05 * a,
            tair_synoptic_sd_k=0.8 + 0.05 * a,
            warmest_doy=200.0 if latitude >= 0 else 200.0 - 182.5,
            rh_mean=0.82 if a < 10 else 0.72,
            precip_mm_yr=2000.0 if a < 10 else 800.0,
            wet_day_fraction=0.55 if a < 10 else 0.33,
            precip_peak_doy=200.0 if latitude >= 0 else 17.5,
        )
        kw.update(overrides)
        return cls(**kw)


#: climates that resemble the five real study sites (station climatologies, rounded)
SITE_CLIMATES: dict[str, dict] = {
    # Foulum, Denmark: maritime, rain all year
    "DK-Fou": dict(tair_mean_k=281.3, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=5.5, tair_synoptic_sd_k=3.0,
                   rh_mean=0.82, precip_mm_yr=700.0, wet_day_fraction=0.48, precip_seasonality=0.2,
                   precip_peak_doy=300.0, cloud_dry_mean=0.6, wind_mean_m_s=3.3),
    # Changling, NE China: continental monsoon, cold dry winters, summer rain
    "CN-Cng": dict(tair_mean_k=279.4, tair_seasonal_amp_k=19.0, tair_diurnal_amp_k=7.5, tair_synoptic_sd_k=3.0,
                   rh_mean=0.56, precip_mm_yr=380.0, wet_day_fraction=0.16, precip_seasonality=0.9,
                   precip_peak_doy=200.0, cloud_dry_mean=0.45, wind_mean_m_s=3.6),
    # El Saler-Sueca, Spain: Mediterranean rice paddies, autumn rain
    "ES-ES2": dict(tair_mean_k=290.5, tair_seasonal_amp_k=7.5, tair_diurnal_amp_k=5.5, tair_synoptic_sd_k=1.8,
                   rh_mean=0.78, precip_mm_yr=560.0, wet_day_fraction=0.14, precip_seasonality=0.6,
                   precip_peak_doy=290.0, cloud_dry_mean=0.45, wind_mean_m_s=2.9),
    # Skukuza, Kruger, South Africa: savanna, summer (Nov-Mar) rain, dry winter
    "ZA-Kru": dict(tair_mean_k=295.4, tair_seasonal_amp_k=4.5, tair_diurnal_amp_k=7.5, tair_synoptic_sd_k=1.8,
                   warmest_doy=17.5, rh_mean=0.55, precip_mm_yr=500.0, wet_day_fraction=0.12,
                   precip_seasonality=0.95, precip_peak_doy=30.0, cloud_dry_mean=0.5, wind_mean_m_s=2.2),
    # Palangkaraya, Borneo: humid tropics, wettest Nov-Apr
    "ID-Pag": dict(tair_mean_k=299.7, tair_seasonal_amp_k=0.5, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=0.6,
                   warmest_doy=280.0, rh_mean=0.84, precip_mm_yr=2300.0, wet_day_fraction=0.45,
                   precip_seasonality=0.35, precip_peak_doy=10.0, cloud_dry_mean=0.6, wind_mean_m_s=1.8),
}


#: local standard time of the real study sites' files (hours ahead of UTC)
SITE_UTC_OFFSET_H: dict[str, float] = {"DK-Fou": 1.0, "CN-Cng": 8.0, "ES-ES2": 0.0, "ZA-Kru": 2.0, "ID-Pag": 7.0}


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Stationary unit-variance AR(1) series of length ``n`` with lag-1 correlation ``phi``."""
    eps = rng.standard_normal(n)
    scale = np.sqrt(1.0 - phi * phi)
    eps[1:] *= scale
    return lfilter([1.0], [1.0, -phi], eps)


def _markov_wet(rng: np.random.Generator, p_wet: np.ndarray, r: float) -> np.ndarray:
    """Two-state Markov chain with time-varying stationary probability ``p_wet`` and lag-1 correlation ``r``."""
    u = rng.random(p_wet.size)
    p11 = p_wet + r * (1.0 - p_wet)
    p01 = p_wet * (1.0 - r)
    wet = np.empty(p_wet.size, dtype=bool)
    state = u[0] < p_wet[0]
    for i in range(p_wet.size):  # a few hundred days: a Python loop is fine
        if i:
            state = u[i] < (p11[i] if state else p01[i])
        wet[i] = state
    return wet


def _logit(p: float) -> float:
    p = min(max(p, 1e-3), 1 - 1e-3)
    return float(np.log(p / (1 - p)))


def _time_axis(start: str, years: float, time_step_s: int) -> np.ndarray:
    if DAY_S % time_step_s:
        raise ValueError(f"time_step_s must divide one day, got {time_step_s}")
    t0 = pd.Timestamp(start)
    whole = int(years)
    t1 = t0 + pd.DateOffset(years=whole) + pd.Timedelta(days=round((years - whole) * 365.25))
    n = int((t1 - t0).total_seconds() // time_step_s)
    return (np.datetime64(t0.to_datetime64(), "ns") + np.arange(n) * np.timedelta64(int(time_step_s), "s")).astype(
        "datetime64[ns]"
    )


def _clear_sky_step_mean(times: np.ndarray, step_s: float, lat: float, lon: float, p_ratio: float, elev: float):
    """Step-mean clear-sky global irradiance (W m-2) and TOA irradiance (W m-2)."""
    n_sub = 6
    offs = ((np.arange(n_sub) + 0.5) / n_sub * step_s * 1e9).astype("timedelta64[ns]")
    sub = (times[:, None] + offs[None, :]).ravel()
    mu = solar.cos_zenith(sub, lat, lon)
    toa = solar.SOLAR_CONSTANT_W_M2 * solar.earth_sun_factor(sub) * np.maximum(mu, 0.0)
    zen_deg = np.degrees(np.arccos(np.clip(mu, -1.0, 1.0)))
    up = mu > 0
    air_mass = np.full(mu.shape, np.inf)
    air_mass[up] = p_ratio / (mu[up] + 0.50572 * (96.07995 - zen_deg[up]) ** -1.6364)
    tau0 = min(0.75 + 2e-5 * elev, 0.85)
    clear = np.where(up, toa * tau0 ** (air_mass**0.678), 0.0)
    return clear.reshape(-1, n_sub).mean(axis=1), toa.reshape(-1, n_sub).mean(axis=1)


def generate_site(
    site: str = "SYN-GRA",
    *,
    latitude: float = 45.0,
    longitude: float = 10.0,
    elevation_m: float = 100.0,
    igbp: str = "GRA",
    start: str = "2005-01-01",
    years: float = 1,
    time_step_s: int = 1800,
    seed: int = 0,
    climate: Climate | None = None,
    site_name: str | None = None,
    utc_offset_h: float | None = None,
) -> xr.Dataset:
    """Synthetic forcing for one site as a canonical Dataset, deterministic from ``seed``.

    ``climate`` defaults to :meth:`Climate.from_latitude`. Time stamps label
    the start of each ``time_step_s`` step in local standard time, as in the
    flux-tower files; ``attrs['utc_offset_h']`` (default ``round(longitude/15)``)
    converts them to UTC: ``utc = time - utc_offset_h``.
    """
    clim = climate if climate is not None else Climate.from_latitude(latitude, elevation_m)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(site.encode())]))
    if utc_offset_h is None:
        utc_offset_h = float(round(longitude / 15.0))
    local_times = _time_axis(start, years, time_step_s)
    times = local_times - np.timedelta64(int(round(utc_offset_h * 3600)), "s")  # UTC, for the physics
    n = times.size
    dt = float(time_step_s)

    # local (mean solar) day of every step, and the day-of-year of each local day
    t_mid_days = (times - times[0]) / np.timedelta64(1, "D") + 0.5 * dt / DAY_S
    local_days = t_mid_days + longitude / 360.0 + (times[0] - times[0].astype("datetime64[D]")) / np.timedelta64(1, "D")
    first_day = int(np.floor(local_days[0]))  # -1 when the local solar day began before UTC midnight
    local_days = local_days - first_day
    day_idx = np.floor(local_days).astype(int)
    n_days = day_idx.max() + 2
    day0 = times[0].astype("datetime64[D]") + np.timedelta64(first_day, "D")
    day_dates = day0 + np.arange(n_days).astype("timedelta64[D]")
    doy_day = (day_dates - day_dates.astype("datetime64[Y]")).astype(float) + 1.0
    day_centres = np.arange(n_days) + 0.5

    def to_steps(daily: np.ndarray) -> np.ndarray:
        """Linear interpolation of day-centred values to the steps (no jumps at midnight)."""
        return np.interp(local_days, day_centres, daily)

    hour_solar = (np.degrees(solar.hour_angle_rad(times + np.timedelta64(int(dt * 5e8), "ns"), longitude)) / 15.0 + 12.0) % 24.0

    # --- wet/dry days and daily precipitation --------------------------------------------
    seas_p = np.cos(2 * np.pi * (doy_day - clim.precip_peak_doy) / 365.25)
    p_wet = np.clip(clim.wet_day_fraction * (1.0 + clim.precip_seasonality * seas_p), 0.005, 0.95)
    wet = _markov_wet(rng, p_wet, clim.wet_persistence)
    shape = 0.75
    mean_wet_mm = clim.precip_mm_yr / (365.25 * max(np.mean(p_wet), 1e-3))
    amounts_mm = np.where(wet, rng.gamma(shape, mean_wet_mm / shape, n_days), 0.0)
    storm_h = rng.uniform(1.0, 10.0, n_days)
    storm_start = rng.uniform(0.0, 24.0 - storm_h)
    hour_local = (local_days - np.floor(local_days)) * 24.0
    step_h = dt / 3600.0
    s0 = hour_local - 0.5 * step_h
    overlap = np.clip(np.minimum(s0 + step_h, storm_start[day_idx] + storm_h[day_idx]) - np.maximum(s0, storm_start[day_idx]), 0.0, None)
    precip = amounts_mm[day_idx] * overlap / storm_h[day_idx] / dt  # kg m-2 s-1

    # --- clouds --------------------------------------------------------------------------
    z_cloud = _ar1(rng, n_days, 0.6)
    mu_c = np.where(wet, _logit(0.85), _logit(clim.cloud_dry_mean))
    cloud_day = 1.0 / (1.0 + np.exp(-(mu_c + 1.2 * z_cloud)))
    cloud = np.clip(to_steps(cloud_day) + 0.08 * _ar1(rng, n, 0.95), 0.0, 1.0)
    cloud = np.where(precip > 0, np.maximum(cloud, 0.8), cloud)

    # --- pressure --------------------------------------------------------------------------
    p0 = fill.barometric_pressure_pa(elevation_m)
    p_day = p0 + 700.0 * _ar1(rng, n_days, 0.8) - 300.0 * wet
    psurf = to_steps(p_day) + 100.0 * np.cos(4 * np.pi * (hour_solar - 10.0) / 24.0)

    # --- shortwave -----------------------------------------------------------------------
    clear, toa = _clear_sky_step_mean(times, dt, latitude, longitude, psurf.mean() / 101325.0, elevation_m)
    swdown = clear * (1.0 - 0.75 * cloud**3.4)

    # --- air temperature ------------------------------------------------------------------
    seas_t = np.cos(2 * np.pi * (doy_day - clim.warmest_doy) / 365.25)
    t_day = (
        clim.tair_mean_k
        + clim.tair_seasonal_amp_k * seas_t
        + clim.tair_synoptic_sd_k * _ar1(rng, n_days, 0.7)
        - 1.0 * wet
    )
    diurnal_amp = clim.tair_diurnal_amp_k * (1.0 - 0.6 * to_steps(cloud_day))
    shape_d = np.cos(2 * np.pi * (hour_solar - 15.0) / 24.0) + 0.2 * np.cos(4 * np.pi * (hour_solar - 9.0) / 24.0)
    tair = to_steps(t_day) + diurnal_amp * shape_d + 0.3 * _ar1(rng, n, 0.9)

    # --- humidity ---------------------------------------------------------------------------
    rh_day = 1.0 / (1.0 + np.exp(-(_logit(clim.rh_mean) + 0.5 * _ar1(rng, n_days, 0.6) + 0.7 * wet)))
    e_day = rh_day * fill.saturation_vapour_pressure_pa(t_day)
    es = fill.saturation_vapour_pressure_pa(tair)
    rh = np.clip(to_steps(e_day) / es, 0.05, 1.0)
    vap = rh * es
    qair = 0.622 * vap / (psurf - 0.378 * vap)

    # --- longwave (Brutsaert clear sky + Crawford & Duchon clouds) --------------------------
    eps_clear = 1.24 * (vap / 100.0 / tair) ** (1.0 / 7.0)
    clf = 0.75 * cloud**3.4  # Crawford & Duchon's cloud fraction: 1 - SWdown / clear-sky SWdown
    eps = clf + (1.0 - clf) * eps_clear
    lwdown = eps * STEFAN_BOLTZMANN * tair**4

    # --- wind -------------------------------------------------------------------------------
    sig = np.sqrt(np.log(1.0 + clim.wind_cv**2))
    w_day = clim.wind_mean_m_s * np.exp(sig * _ar1(rng, n_days, 0.6) - 0.5 * sig**2)
    gust = np.exp(0.12 * _ar1(rng, n, 0.8) - 0.5 * 0.12**2)
    wind = np.clip(to_steps(w_day) * (1.0 + 0.3 * np.cos(2 * np.pi * (hour_solar - 14.0) / 24.0)) * gust, 0.1, 30.0)

    rain, snow = fill.split_precip(precip, tair)
    co2 = fill.co2_series(times)
    lai = fill.lai_climatology(times, igbp, latitude)

    data = dict(SWdown=swdown, LWdown=lwdown, Tair=tair, Qair=qair, Psurf=psurf, Wind=wind,
                Rainf=rain, Snowf=snow, CO2air=co2, LAI=lai)
    canopy_h, ref_h = fill.default_heights_m(igbp)
    attrs = {
        "site": site,
        "site_name": site_name or f"synthetic {igbp} site",
        "igbp": igbp,
        "pft_group": pft_group(igbp),
        "latitude": float(latitude),
        "longitude": float(longitude),
        "elevation_m": float(elevation_m),
        "reference_height_m": ref_h,
        "canopy_height_m": canopy_h,
        "time_step_s": int(time_step_s),
        "utc_offset_h": float(utc_offset_h),
        "source": "synthetic",
        "seed": int(seed),
        "climate": json.dumps(dataclasses.asdict(clim)),
    }
    fill.add_filled(attrs, "forcing", f"mdpl.data.synthetic weather generator (seed={int(seed)})")
    fill.add_filled(attrs, "CO2air", "NOAA Mauna Loa annual means")
    fill.add_filled(attrs, "LAI", f"PFT climatology ({igbp})")
    fill.add_filled(attrs, "Snowf", "precipitation split by air temperature")
    fill.add_filled(attrs, "canopy_height_m", f"IGBP default ({igbp})")
    fill.add_filled(attrs, "reference_height_m", f"IGBP default ({igbp})")
    fill.add_filled(attrs, "fluxes", "absent (all-NaN, not measured)")
    return assemble(local_times, data, attrs)


def site_twin(code: str, *, years: float = 2, seed: int = 0, time_step_s: int = 1800, start: str | None = None) -> xr.Dataset:
    """Synthetic twin of a catalogue site: its lat/lon/elevation/IGBP, a resembling climate."""
    info = site_info(code)
    over = SITE_CLIMATES.get(info["site"], {})
    clim = Climate.from_latitude(info["latitude"], info["elevation_m"], **over)
    return generate_site(
        info["site"],
        latitude=info["latitude"],
        longitude=info["longitude"],
        elevation_m=info["elevation_m"],
        igbp=info["igbp"],
        start=start or f"{info['start_year']}-01-01",
        years=years,
        time_step_s=time_step_s,
        seed=seed,
        climate=clim,
        site_name=f"{info['site_name']} (synthetic twin)",
        utc_offset_h=SITE_UTC_OFFSET_H.get(info["site"]),
    )


#: the five study sites of the embedded default
DEFAULT_SITES = ("DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag")


def default_sites(
    years: float = 2, seed: int = 0, time_step_s: int = 1800, sites: list[str] | tuple[str, ...] | None = None
) -> list[xr.Dataset]:
    """Synthetic twins of the five real study sites (DK-Fou, CN-Cng, ES-ES2, ZA-Kru, ID-Pag)."""
    return [site_twin(c, years=years, seed=seed, time_step_s=time_step_s) for c in (sites or DEFAULT_SITES)]
