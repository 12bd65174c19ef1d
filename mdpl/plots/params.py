"""Where learned parameters sit inside their bounds, next to the PFT defaults."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mdpl.plots.style import group_colours


def parameter_strip(learned_unit, *, defaults_unit=None, ax=None, title: str | None = None):
    """One row per parameter; x = position between its lower (0) and upper (1) bound.

    ``learned_unit``: DataFrame, index = site, columns = parameters, values in
    the unit interval (``ParameterSpace.to_unit``: log-scaled parameters are
    placed on a log axis). ``defaults_unit`` (same shape): the PFT defaults of
    each site, drawn as open markers and joined to the learned value by a thin
    line, so the shift calibration made is visible. Returns ``(fig, ax)``; each
    site's learned markers carry ``gid = site``.
    """
    params = list(learned_unit.columns)
    sites = list(learned_unit.index)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.42 * len(params)))
    else:
        fig = ax.figure
    colours = group_colours(sites)
    n = max(1, len(sites))
    offsets = np.linspace(-0.25, 0.25, n) if n > 1 else np.zeros(1)
    ys = np.arange(len(params))[::-1]
    for k, site in enumerate(sites):
        x = learned_unit.loc[site, params].to_numpy(dtype=float)
        y = ys + offsets[k]
        if defaults_unit is not None and site in defaults_unit.index:
            d = defaults_unit.loc[site, params].to_numpy(dtype=float)
            ax.scatter(d, y, marker="o", facecolor="none", edgecolor=colours[site], s=30, lw=1.0)
            for xi, di, yi in zip(x, d, y):
                ax.plot([di, xi], [yi, yi], color=colours[site], lw=0.6, alpha=0.7)
        sc = ax.scatter(x, y, marker="D", color=colours[site], edgecolor="black", lw=0.4, s=32, label=str(site), zorder=3)
        sc.set_gid(str(site))
    for bound in (0.0, 1.0):
        ax.axvline(bound, color="black", lw=1.0)
    ax.set_xlim(-0.05, 1.05)
    ax.set_yticks(ys)
    ax.set_yticklabels(params)
    ax.set_xlabel("position within bounds (0 = lower, 1 = upper; log-scaled parameters on a log axis)")
    ax.grid(axis="x", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if defaults_unit is not None:
        handles.append(plt.Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor="black"))
        labels.append("PFT default (open)")
    ax.legend(handles, labels, fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    return fig, ax
