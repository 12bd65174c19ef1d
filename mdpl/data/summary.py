"""Per-site summaries of canonical datasets: who the sites are, how much was measured, their climate.

Tables for the data chapter, in familiar units stated in every column name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mdpl.data.aggregate import monthly
from mdpl.data.schema import measured_name


def _datasets(sites) -> list:
    """A list of canonical site Datasets from a list, tuple or mapping of them."""
    if isinstance(sites, Mapping):
        return list(sites.values())
    return list(sites)


def sites_table(sites):
    """One row per site: code, name, IGBP class, PFT group, location, period and time step (from attrs)."""
    rows = []
    for ds in _datasets(sites):
        a = ds.attrs
        t = ds["time"].values
        step = float(a.get("time_step_s", 0) or 0)
        rows.append({
            "site": a.get("site"), "name": a.get("site_name", ""), "igbp": a.get("igbp", ""),
            "pft_group": a.get("pft_group", ""), "latitude": a.get("latitude"), "longitude": a.get("longitude"),
            "elevation_m": a.get("elevation_m"), "start": str(pd.Timestamp(t[0]).date()),
            "end": str(pd.Timestamp(t[-1]).date()), "years": round(len(t) * step / (365.25 * 86400), 2) if step else None,
            "time_step_min": step / 60 if step else None, "source": a.get("source", ""),
        })
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).reset_index(drop=True)


def coverage_table(sites, fluxes: Sequence[str] = ("Qle", "Qh", "NEE")):
    """Percent of time steps where each flux was measured (not gap-filled), one row per site."""

    rows = []
    for ds in _datasets(sites):
        row = {"site": ds.attrs.get("site"), "pft_group": ds.attrs.get("pft_group", "")}
        for f in fluxes:
            m = measured_name(f)
            row[f] = 100.0 * float(ds[m].values.mean()) if m in ds else 0.0
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).set_index(["pft_group", "site"])


def climate_table(sites):
    """Per-site means of the forcing and the measured fluxes in familiar units.

    Columns: SWdown (W m-2), Tair (degC), precipitation (mm yr-1), Wind (m s-1),
    and the mean of Qle, Qh (W m-2) and NEE (umol m-2 s-1) over measured steps.
    """

    rows = []
    for ds in _datasets(sites):
        precip = ds["Rainf"].values + (ds["Snowf"].values if "Snowf" in ds else 0.0)  # kg m-2 s-1
        row = {
            "site": ds.attrs.get("site"), "pft_group": ds.attrs.get("pft_group", ""),
            "SWdown (W m-2)": float(np.nanmean(ds["SWdown"].values)),
            "Tair (degC)": float(np.nanmean(ds["Tair"].values) - 273.15),
            "precipitation (mm yr-1)": float(np.nanmean(precip) * 86400 * 365.25),
            "Wind (m s-1)": float(np.nanmean(ds["Wind"].values)),
        }
        for f, unit in (("Qle", "W m-2"), ("Qh", "W m-2"), ("NEE", "umol m-2 s-1")):
            if f in ds:
                m = ds[measured_name(f)].values if measured_name(f) in ds else np.isfinite(ds[f].values)
                v = ds[f].values[m]
                row[f"{f} (measured, {unit})"] = float(np.nanmean(v)) if v.size else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).set_index(["pft_group", "site"])


def forcing_monthly(ds):
    """Monthly mean forcing of one site in familiar units: a DataFrame indexed by month.

    Columns: ``SWdown (W m-2)``, ``Tair (degC)``, ``precipitation (mm d-1)``
    (rain + snow), ``Wind (m s-1)``; from :func:`mdpl.data.aggregate.monthly`.
    """

    m = monthly(ds)
    precip = m["Rainf"].values + (m["Snowf"].values if "Snowf" in m else 0.0)
    return pd.DataFrame({
        "SWdown (W m-2)": m["SWdown"].values,
        "Tair (degC)": m["Tair"].values - 273.15,
        "precipitation (mm d-1)": precip * 86400.0,
        "Wind (m s-1)": m["Wind"].values,
    }, index=pd.DatetimeIndex(m["time"].values, name="month"))
