"""Time series of observed and modelled fluxes at daily or monthly scale."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mdpl.plots.style import style_for


def _to_series(x, name: str = "") -> pd.Series:
    """A pandas Series with a time index from a Series or a 1-D xarray DataArray."""
    if isinstance(x, pd.Series):
        return x
    if hasattr(x, "to_series"):
        return x.to_series()
    raise TypeError(f"{name or 'series'}: expected a pandas Series or xarray DataArray with a time index")


def plot_series(
    obs,
    sims: Mapping[str, object] | None = None,
    *,
    ax=None,
    var: str = "",
    units: str = "",
    scale: str = "daily",
    title: str | None = None,
    obs_label: str = "observed",
):
    """Plot ``obs`` (black) and each simulation in ``sims`` (label -> series) against time.

    ``scale`` ('daily', 'monthly', or any word) only sets line style and the
    axis label: aggregate first (``mdpl.data.aggregate``). Observed values
    that are NaN (gap-filled steps masked out) leave gaps rather than being
    interpolated. Returns ``(fig, ax)``; every line carries ``gid = label``.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.2))
    else:
        fig = ax.figure
    o = _to_series(obs, "obs")
    monthly = scale.lower().startswith("month")
    kw = dict(marker="o", ms=3) if monthly else {}
    (line,) = ax.plot(o.index, o.to_numpy(dtype=float), color="black", lw=1.4 if monthly else 0.9,
                      label=obs_label, zorder=5, **kw)
    line.set_gid(obs_label)
    for i, (label, s) in enumerate((sims or {}).items()):
        s = _to_series(s, label)
        colour, marker = style_for(label, i)
        kw = dict(marker=marker, ms=3) if monthly else {}
        (line,) = ax.plot(s.index, s.to_numpy(dtype=float), color=colour, lw=1.2 if monthly else 0.7,
                          alpha=0.9, label=label, **kw)
        line.set_gid(label)
    unit_txt = f" ({units})" if units else ""
    ax.set_ylabel(f"{scale} {var}{unit_txt}".strip())
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=min(6, 1 + len(sims or {})), frameon=False, loc="upper left")
    if title:
        ax.set_title(title)
    if np.issubdtype(np.asarray(o.index).dtype, np.datetime64):
        locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig, ax


def plot_series_grid(panels: Mapping[str, tuple[object, Mapping[str, object]]], *, var: str = "",
                     units: str = "", scale: str = "daily", ncols: int = 1, sharey: bool = False):
    """One :func:`plot_series` panel per key (e.g. site) of ``panels``: key -> (obs, sims).

    Returns ``(fig, axes)`` with ``axes`` a flat array, one per panel.
    """
    n = max(1, len(panels))
    nrows = int(np.ceil(n / ncols))
    width = 9.0 if ncols == 1 else 5.5 * ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, 2.6 * nrows), squeeze=False, sharey=sharey)
    axes = axes.ravel()
    for ax, (key, (obs, sims)) in zip(axes, panels.items()):
        plot_series(obs, sims, ax=ax, var=var, units=units, scale=scale, title=str(key))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig, axes


def plot_band(days, members, *, obs=None, ax=None, var: str = "", units: str = "", label: str = "ensemble",
              quantiles: tuple[float, float] = (0.05, 0.95), colour: str = "tab:blue"):
    """Ensemble spread over time: the ``quantiles`` band and the median of ``members`` (members, days).

    ``obs`` (days,) is drawn in black where finite. Returns ``(fig, ax)``; the
    band is the first collection, with ``gid = label``.
    """
    m = np.asarray(members, dtype=float)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.0))
    else:
        fig = ax.figure
    ok = np.isfinite(m).any(axis=0)
    lo = np.full(m.shape[1], np.nan)
    hi, med = lo.copy(), lo.copy()
    lo[ok], hi[ok] = np.nanquantile(m[:, ok], quantiles[0], axis=0), np.nanquantile(m[:, ok], quantiles[1], axis=0)
    med[ok] = np.nanmedian(m[:, ok], axis=0)
    band = ax.fill_between(days, lo, hi, color=colour, alpha=0.3, lw=0,
                           label=f"{label} {100 * quantiles[0]:.0f}-{100 * quantiles[1]:.0f} %")
    band.set_gid(label)
    ax.plot(days, med, color=colour, lw=0.8, label=f"{label} median")
    if obs is not None:
        ax.plot(days, np.asarray(obs, dtype=float), color="black", lw=0.7, label="observed")
    ax.set_ylabel(f"{var} ({units})" if units else var)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left", ncol=3)
    return fig, ax


def plot_lines(series: Mapping[str, object], *, ax=None, ylabel: str = "", title: str | None = None,
               marker: str | None = "o"):
    """One line per entry of ``series`` (label -> Series with a time index); return ``(fig, ax)``.

    For quantities without an observed reference (e.g. forcing at several
    sites). Each line carries ``gid = label``.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.0))
    else:
        fig = ax.figure
    for i, (label, s) in enumerate(series.items()):
        s = _to_series(s, label)
        colour, _ = style_for(label, i)
        (line,) = ax.plot(s.index, s.to_numpy(dtype=float), color=colour, lw=1.0, marker=marker, ms=2.5, label=label)
        line.set_gid(label)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, ncol=min(6, max(1, len(series))), loc="upper left")
    if title:
        ax.set_title(title)
    return fig, ax
