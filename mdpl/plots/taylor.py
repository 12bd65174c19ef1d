"""Taylor diagram (Taylor 2001): one point per model summarises SD, R and centred RMSD.

A model with normalised standard deviation ``s`` (sd_sim / sd_obs) and
correlation ``R`` sits at polar radius ``s`` and angle ``arccos(R)`` from the
horizontal axis, i.e. at Cartesian ``(s R, s sqrt(1 - R^2))``. The observation
is the reference point ``(1, 0)``. By the law of cosines the distance from a
point to the reference is the centred RMS difference normalised by sd_obs
(``crmsd^2 = 1 + s^2 - 2 s R``), so the dashed circles around the reference
are RMSE isolines (bias removed) and the grey rays from the origin are R
isolines. Closer to the reference star is better on all three at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from mdpl.evaluate.metrics import taylor_stats
from mdpl.plots.style import style_for

#: how to read the diagram, for figure captions and the book (markdown)
TAYLOR_HOWTO = (
    "**How to read a Taylor diagram.** Each marker is one model run compared with the tower "
    "observations of one flux. Its *distance from the origin* is the model's standard deviation "
    "divided by the observed one (1 = the right amount of variability, on the dotted arc). Its "
    "*angle* gives the correlation R with the observations, read on the outer arc (grey rays are "
    "R isolines; towards the horizontal axis is better, R = 1 on the axis). Its *distance from "
    "the black star* (the observations, at SD ratio 1 and R = 1) is the centred RMS error "
    "divided by the observed SD: the dashed circles around the star are these RMSE isolines, "
    "and a smaller circle is better. An arrow from one marker to another shows what calibration "
    "changed: an arrow pointing towards the star lowered the RMSE; one turning towards the "
    "horizontal axis raised R. The mean bias is not shown (it is removed from the centred RMSE)."
)

DEFAULT_R_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def taylor_coords(sd_ratio: float, r: float) -> tuple[float, float]:
    """Cartesian position of a point with normalised SD ``sd_ratio`` and correlation ``r``."""
    r = float(np.clip(r, -1.0, 1.0))
    return float(sd_ratio * r), float(sd_ratio * math.sqrt(max(0.0, 1.0 - r * r)))


def _as_points(points) -> dict[str, dict[str, float]]:
    if hasattr(points, "iterrows"):  # pandas DataFrame with label index or column
        df = points
        if "label" in df.columns:
            df = df.set_index("label")
        return {str(k): {"sd_ratio": float(v["sd_ratio"]), "r": float(v["r"])} for k, v in df.iterrows()}
    if isinstance(points, Mapping):
        return {str(k): {"sd_ratio": float(v["sd_ratio"]), "r": float(v["r"])} for k, v in points.items()}
    raise TypeError("points: expected a mapping label -> taylor_stats dict or a DataFrame with sd_ratio and r")


def taylor_diagram(
    points,
    *,
    ax=None,
    title: str | None = None,
    arrows: Sequence[tuple[str, str]] = (),
    max_sd: float | None = None,
    crmsd_levels: Sequence[float] | None = None,
    r_levels: Sequence[float] = DEFAULT_R_LEVELS,
    legend: bool = True,
):
    """Draw a Taylor diagram of ``points`` (label -> ``{'sd_ratio', 'r'}``), return ``(fig, ax)``.

    ``arrows`` is a list of ``(from_label, to_label)`` pairs, e.g.
    ``[('default', 'mdpl')]``, drawn as arrows showing a change. Points with a
    NaN statistic are skipped (and listed in the legend as "n/a"). Each marker
    carries ``gid = label`` so tests and users can find it.
    """
    pts = _as_points(points)
    finite = {k: v for k, v in pts.items() if math.isfinite(v["sd_ratio"]) and math.isfinite(v["r"])}
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.6, 5.0))
    else:
        fig = ax.figure
    sds = [v["sd_ratio"] for v in finite.values()] + [1.0]
    smax = max_sd if max_sd is not None else 1.25 * max(1.5, max(sds))
    negative = any(v["r"] < 0 for v in finite.values())
    theta_max = math.pi if negative else math.pi / 2

    # frame: outer arc, SD arcs (dotted), R rays (grey) with labels on the outer arc
    th = np.linspace(0, theta_max, 200)
    ax.plot(smax * np.cos(th), smax * np.sin(th), color="black", lw=1.0)
    for s in np.arange(0.5, smax, 0.5):
        ax.plot(s * np.cos(th), s * np.sin(th), color="0.75", lw=0.6, ls=":" if abs(s - 1) > 1e-9 else "-.")
    levels = list(r_levels) + ([-x for x in r_levels] if negative else [])
    for rl in levels:
        a = math.acos(rl)
        ax.plot([0, smax * math.cos(a)], [0, smax * math.sin(a)], color="0.8", lw=0.6)
        ax.text(1.03 * smax * math.cos(a), 1.03 * smax * math.sin(a), f"{rl:g}", fontsize=7,
                ha="center", va="center", color="0.3")
    a = math.radians(48)
    ax.text(1.15 * smax * math.cos(a), 1.15 * smax * math.sin(a), "correlation R", rotation=-42,
            fontsize=8, color="0.3", ha="center", va="center")

    # centred RMSD isolines: circles around the reference (1, 0)
    if crmsd_levels is None:
        crmsd_levels = [c for c in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0) if c < smax + 1]
    for c in crmsd_levels:
        phi = np.linspace(0, math.pi, 300)
        x, y = 1 + c * np.cos(phi), c * np.sin(phi)
        keep = (np.hypot(x, y) <= smax) & (np.arctan2(y, x) <= theta_max + 1e-9)
        x, y = np.where(keep, x, np.nan), np.where(keep, y, np.nan)
        ax.plot(x, y, color="tab:green", lw=0.7, ls="--", alpha=0.7,
                label="centred RMSE / SD obs" if c == crmsd_levels[0] else None)
        i = np.nanargmax(np.where(keep, y, np.nan)) if keep.any() else None
        if i is not None:
            ax.text(x[i], y[i], f"{c:g}", fontsize=7, color="tab:green", ha="center", va="bottom")

    ref = ax.scatter([1.0], [0.0], marker="*", s=180, color="black", zorder=5, clip_on=False, label="observed")
    ref.set_gid("observed")
    for i, (label, v) in enumerate(pts.items()):
        colour, marker = style_for(label, i)
        if label not in finite:
            ax.scatter([], [], marker=marker, color=colour, label=f"{label} (n/a)")
            continue
        x, y = taylor_coords(v["sd_ratio"], v["r"])
        sc = ax.scatter([x], [y], marker=marker, s=70, color=colour, edgecolor="black", lw=0.5,
                        zorder=6, clip_on=False, label=label)
        sc.set_gid(label)
    for a, b in arrows:
        if a in finite and b in finite:
            xa, ya = taylor_coords(finite[a]["sd_ratio"], finite[a]["r"])
            xb, yb = taylor_coords(finite[b]["sd_ratio"], finite[b]["r"])
            ax.annotate("", xy=(xb, yb), xytext=(xa, ya),
                        arrowprops=dict(arrowstyle="->", color="0.2", lw=1.0, shrinkA=5, shrinkB=5))

    ax.set_aspect("equal")
    ax.set_xlim(-smax * 1.08 if negative else 0, smax * 1.08)
    ax.set_ylim(0, smax * 1.08)
    ax.set_xlabel("standard deviation / observed standard deviation")
    ax.set_ylabel("standard deviation / observed standard deviation")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(loc="upper right", fontsize=8, frameon=False, bbox_to_anchor=(1.02, 1.02))
    return fig, ax


def taylor_diagram_from_series(obs, sims: Mapping[str, object], *, mask=None, **kwargs):
    """Compute :func:`mdpl.evaluate.metrics.taylor_stats` of each simulation against ``obs`` and draw them."""
    pts = {label: taylor_stats(obs, sim, mask) for label, sim in sims.items()}
    return taylor_diagram(pts, **kwargs)
