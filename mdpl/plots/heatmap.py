"""Annotated heat maps of small tables (e.g. parameter sensitivity: parameter x flux)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def heatmap(table, *, ax=None, cmap: str = "RdBu_r", vmin: float | None = -1.0, vmax: float | None = 1.0,
            decimals: int = 2, title: str | None = None, colorbar_label: str = ""):
    """Draw a DataFrame as a colour grid with each value written in its cell; return ``(fig, ax)``.

    Rows go top to bottom in table order; NaN cells are left blank (grey "n/a").
    The image's array equals the table's values (tests read it back).
    """
    values = table.to_numpy(dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 + 1.0 * values.shape[1], 0.9 + 0.38 * values.shape[0]))
    else:
        fig = ax.figure
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]))
    ax.set_xticklabels([str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]))
    ax.set_yticklabels([str(i) for i in table.index])
    lo = vmin if vmin is not None else np.nanmin(values)
    hi = vmax if vmax is not None else np.nanmax(values)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                dark = abs((v - lo) / (hi - lo + 1e-12) - 0.5) > 0.3
                ax.text(j, i, f"{v:.{decimals}f}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
            else:
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.5")
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if colorbar_label:
        cb.set_label(colorbar_label)
    if title:
        ax.set_title(title)
    return fig, ax
