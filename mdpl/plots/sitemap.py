"""Where the sites are: a latitude/longitude scatter on a plain world frame.

No coastlines (no offline source for them ships with the dependencies): a
graticule every 30 degrees, the equator and the tropics locate the sites.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mdpl.plots.style import group_colours


def site_map(sites, *, ax=None, color_by: str = "pft_group", annotate: bool = True, title: str | None = None):
    """Plot sites (a DataFrame with ``site``, ``latitude``, ``longitude`` and ``color_by`` columns).

    Longitude in degrees east (-180..180), latitude in degrees north. One
    colour per value of ``color_by`` (default PFT group). Returns ``(fig, ax)``;
    each group's markers carry ``gid = group``.
    """
    for col in ("site", "latitude", "longitude"):
        if col not in sites.columns:
            raise ValueError(f"site_map: sites table lacks column {col!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.6))
    else:
        fig = ax.figure
    lon = ((sites["longitude"].to_numpy(dtype=float) + 180.0) % 360.0) - 180.0
    lat = sites["latitude"].to_numpy(dtype=float)
    groups = sites[color_by].astype(str).to_numpy() if color_by in sites.columns else np.array(["sites"] * len(sites))
    colours = group_colours(groups)
    for g in sorted(set(groups)):
        sel = groups == g
        sc = ax.scatter(lon[sel], lat[sel], s=55, color=colours[g], edgecolor="black", lw=0.5, label=g, zorder=4)
        sc.set_gid(g)
    if annotate:
        for name, x, y in zip(sites["site"], lon, lat):
            ax.annotate(str(name), (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8)
    for y in (-23.44, 23.44):
        ax.axhline(y, color="0.7", lw=0.6, ls=":")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(np.arange(-180, 181, 60))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.grid(alpha=0.35)
    ax.set_aspect("equal")
    ax.set_xlabel("longitude (degrees east)")
    ax.set_ylabel("latitude (degrees north)")
    ax.legend(fontsize=8, frameon=True, loc="lower left", title=color_by.replace("_", " "))
    if title:
        ax.set_title(title)
    return fig, ax
