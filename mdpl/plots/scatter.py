"""Predicted against reference values with the 1:1 line (e.g. surrogate vs land model)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mdpl.plots.style import style_for


def scatter_compare(reference, predicted, *, ax=None, label: str = "", units: str = "", xlabel: str = "reference",
                    ylabel: str = "predicted", max_points: int = 20000, seed: int = 0, title: str | None = None):
    """Scatter ``predicted`` against ``reference`` (any shapes, flattened, NaN pairs dropped) with a 1:1 line.

    At most ``max_points`` pairs are drawn (a seeded random subset) so large
    ensembles stay light; the title carries R^2 of all pairs. Returns ``(fig, ax)``.
    """
    x = np.asarray(reference, dtype=float).ravel()
    y = np.asarray(predicted, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    else:
        fig = ax.figure
    if x.size > max_points:
        idx = np.random.default_rng(seed).choice(x.size, max_points, replace=False)
        xs, ys = x[idx], y[idx]
    else:
        xs, ys = x, y
    colour, _ = style_for(label or "points")
    sc = ax.scatter(xs, ys, s=3, alpha=0.25, color=colour, lw=0, label=label or None)
    sc.set_gid(label or "points")
    if x.size:
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ss = np.sum((x - x.mean()) ** 2)
        r2 = 1 - np.sum((y - x) ** 2) / ss if ss > 0 else np.nan
        ax.set_title(f"{title + ': ' if title else ''}R² = {r2:.3f}", fontsize=9)
    elif title:
        ax.set_title(title, fontsize=9)
    u = f" ({units})" if units else ""
    ax.set_xlabel(xlabel + u)
    ax.set_ylabel(ylabel + u)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    return fig, ax
