"""The canonical per-site dataset every reader and generator returns.

One ``xarray.Dataset`` per site with a single dimension ``time``. Time stamps
label the *start* of each averaging step, in the site's local standard
time as in the flux-tower files (``attrs['utc_offset_h']`` converts to UTC); ``attrs['time_step_s']`` holds the
step length (1800 or 3600 s). Variable names are ALMA's, units CF.

Every flux ``X`` in :data:`FLUX_VARS` comes with a boolean ``X_measured``
(True where the tower measured it, False where gap-filled or missing).
A variable a file lacks is filled (see ``attrs['filled']``) or, for fluxes,
present as all-NaN with an all-False mask.
"""

from __future__ import annotations

#: forcing variable -> CF units
FORCING_VARS: dict[str, str] = {
    "SWdown": "W m-2",
    "LWdown": "W m-2",
    "Tair": "K",
    "Qair": "kg kg-1",
    "Psurf": "Pa",
    "Wind": "m s-1",
    "Rainf": "kg m-2 s-1",
    "Snowf": "kg m-2 s-1",
    "CO2air": "ppm",
    "LAI": "m2 m-2",
}

#: flux variable -> CF units
FLUX_VARS: dict[str, str] = {
    "Qle": "W m-2",
    "Qh": "W m-2",
    "Qle_cor": "W m-2",
    "Qh_cor": "W m-2",
    "NEE": "umol m-2 s-1",
    "GPP": "umol m-2 s-1",
    "Rnet": "W m-2",
    "Qg": "W m-2",
}

#: site attributes every canonical Dataset carries (name -> meaning/unit)
SITE_ATTRS: dict[str, str] = {
    "site": "PLUMBER2 site code, e.g. 'DK-Fou'",
    "site_name": "human-readable site name",
    "igbp": "IGBP land-cover class, e.g. 'CRO'",
    "pft_group": "PFT group used throughout (see mdpl.data.catalogue.PFT_GROUPS)",
    "latitude": "degrees north",
    "longitude": "degrees east",
    "elevation_m": "m above sea level",
    "reference_height_m": "measurement height above ground, m",
    "canopy_height_m": "canopy height, m",
    "time_step_s": "length of one time step, s",
    "utc_offset_h": "hours the time stamps (local standard time) are ahead of UTC: utc = time - utc_offset_h",
    "source": "'plumber2', 'pals' or 'synthetic'",
    "filled": "semicolon-separated 'what=how' notes for everything filled in",
}


def measured_name(flux: str) -> str:
    """Name of the boolean mask that marks measured steps of ``flux``."""
    return f"{flux}_measured"


def assemble(times, forcing: dict, attrs: dict, fluxes: dict | None = None, measured: dict | None = None):
    """Build a canonical Dataset: every forcing in ``forcing`` (float64), every flux of
    :data:`FLUX_VARS` (all-NaN and unmeasured when absent from ``fluxes``), ``attrs``."""
    import numpy as np
    import xarray as xr

    times = np.asarray(times, dtype="datetime64[ns]")
    n = times.size
    fluxes = fluxes or {}
    measured = measured or {}
    ds = xr.Dataset(coords={"time": ("time", times, {"long_name": "start of averaging step (local standard time)"})})
    for name, units in FORCING_VARS.items():
        ds[name] = ("time", np.asarray(forcing[name], dtype=np.float64), {"units": units})
    for name, units in FLUX_VARS.items():
        values = fluxes.get(name)
        ds[name] = ("time", np.full(n, np.nan) if values is None else np.asarray(values, dtype=np.float64), {"units": units})
        mask = measured.get(name)
        mask = np.zeros(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        ds[measured_name(name)] = ("time", mask, {"long_name": f"{name} measured (not gap-filled)"})
    ds.attrs.update(attrs)
    return ds
