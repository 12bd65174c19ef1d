"""Tiny canonical site Datasets for the baselines/evaluate tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr


def toy_site(site: str, qle, qh, *, swdown=None, tair=None, days: int = 20, seed: int = 0, pft: str = "grassland",
             measured=None, start: str = "2005-01-01") -> xr.Dataset:
    """A half-hourly canonical Dataset; ``qle``/``qh`` are arrays or callables of (sw, tair_k, rh_pct)."""
    n = days * 48
    rng = np.random.default_rng(seed)
    t = pd.date_range(start, periods=n, freq="30min")
    hour = (np.arange(n) % 48) / 2.0
    sw = np.clip(800 * np.sin(np.pi * (hour - 6) / 12), 0, None) * rng.uniform(0.5, 1.0, n) if swdown is None else swdown
    ta = 288 + 8 * np.sin(np.pi * (hour - 9) / 12) + rng.normal(0, 1, n) if tair is None else tair
    ps = np.full(n, 1e5)
    rh = np.clip(80 - 2.0 * (ta - 288) + rng.normal(0, 5, n), 10, 100)
    from mdpl.data.fill import qair_from_rh

    qa = qair_from_rh(rh / 100.0, ta, ps)
    fx = {}
    for name, f in (("Qle", qle), ("Qh", qh)):
        fx[name] = np.asarray(f(sw, ta, rh) if callable(f) else f, float)
    ds = xr.Dataset(coords={"time": t})
    extra = {"LWdown": 300 + 0 * sw, "Wind": 2 + 0 * sw, "Rainf": np.where(np.arange(n) % 97 == 0, 1e-3, 0.0),
             "Snowf": 0 * sw, "CO2air": 380 + 0 * sw, "LAI": 2 + 0 * sw}
    for name, v in (("SWdown", sw), ("Tair", ta), ("Qair", qa), ("Psurf", ps), *extra.items()):
        ds[name] = ("time", np.asarray(v, float))
    for name, v in fx.items():
        ds[name] = ("time", v)
        m = np.ones(n, bool) if measured is None else np.asarray(measured, bool)
        ds[f"{name}_measured"] = ("time", m)
    ds.attrs.update(site=site, pft_group=pft, igbp="GRA", time_step_s=1800, source="synthetic", latitude=45.0,
                    longitude=10.0, elevation_m=100.0, reference_height_m=3.0, canopy_height_m=0.5)
    return ds
