"""Which parameter controls which flux where: total-order Sobol indices, one panel per flux."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def sensitivity_grid(indices: pd.DataFrame, *, fluxes=("Qle", "Qh", "NEE"), threshold: float | None = None,
                     value: str = "ST", title: str | None = None):
    """Heat maps parameter x site of ``value`` (``ST`` by default), one per flux; return ``(fig, axes)``.

    ``indices``: rows (site, flux, parameter, ST[, calibrated]) as
    :func:`mdpl.calibrate.sensitivity.sobol_screen` gives. Cells of parameters
    the screen left at their defaults (``calibrated`` False) are drawn with a
    grey border and the value in grey; ``threshold`` is noted in the title.
    Each panel's image array equals the pivoted table (tests read it back).
    """
    fl = [f for f in fluxes if f in set(indices.flux)]
    if not fl:
        raise ValueError("sensitivity_grid: no indices for any of the fluxes " + ", ".join(fluxes))
    params = list(dict.fromkeys(indices.parameter))
    sites = list(dict.fromkeys(indices.site))
    fig, axes = plt.subplots(1, len(fl), figsize=(1.6 + 0.75 * len(sites) * len(fl), 1.2 + 0.36 * len(params)),
                             squeeze=False, sharey=True)
    im = None
    for ax, flux in zip(axes[0], fl):
        g = indices[indices.flux == flux]
        table = g.pivot_table(index="parameter", columns="site", values=value).reindex(index=params, columns=sites)
        vals = table.to_numpy(float)
        im = ax.imshow(np.ma.masked_invalid(vals), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        cal = (g.pivot_table(index="parameter", columns="site", values="calibrated", aggfunc="max")
               .reindex(index=params, columns=sites) if "calibrated" in g else None)
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                v = vals[i, j]
                if not np.isfinite(v):
                    continue
                fixed = cal is not None and cal.iloc[i, j] is not None and not bool(cal.iloc[i, j])
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="0.55" if fixed else ("black" if v > 0.6 else "white"))
        ax.set_xticks(range(len(sites)))
        ax.set_xticklabels(sites, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(params)))
        ax.set_yticklabels(params, fontsize=8)
        ax.set_title(flux)
    cb = fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02)
    cb.set_label(f"total-order Sobol index {value} (1)")
    fig.suptitle(title or ("Sensitivity of each flux's calibration loss" +
                           (f" (grey: ST < {threshold:g} for every target flux, left at default)" if threshold else "")),
                 fontsize=10)
    return fig, axes
