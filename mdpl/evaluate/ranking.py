"""Rank models within comparable groups: a figure and a plain-language summary.

Input is a ranked tidy table (:func:`mdpl.evaluate.tables.rank_table`). Only
rows of one (comparison, site, flux, scale) group are ranked against each
other, so a half-hourly peer number is never ranked against a daily one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mdpl.evaluate.tables import mean_rank

#: comparisons in the order they are shown, with a title
COMPARISONS = {
    "held_out": "held-out period",
    "plumber2_basis": "PLUMBER2 basis (whole record, measured steps)",
    "training": "training period (in sample)",
}
SCALE_ORDER = ("halfhourly", "daily", "monthly")


def _groups(df: pd.DataFrame, include=("held_out", "plumber2_basis")):
    for comp in COMPARISONS:
        if comp not in include:
            continue
        for scale in SCALE_ORDER:
            sub = df[(df["comparison"] == comp) & (df["scale"] == scale)]
            if not sub.empty:
                yield comp, scale, sub


def ranking_figure(df: pd.DataFrame, metric: str = "rmse", include=("held_out", "plumber2_basis")):
    """Heatmaps of rank (1 = lowest RMSE) per site x model, one panel per comparison/scale/flux.

    Returns ``(fig, axes)``; cells are annotated with the metric's value.
    """
    import matplotlib.pyplot as plt

    groups = list(_groups(df, include))
    fluxes = sorted(df["flux"].dropna().unique(), key=lambda f: ("Qle", "Qh", "NEE").index(f) if f in ("Qle", "Qh", "NEE") else 9)
    nrow, ncol = max(len(groups), 1), max(len(fluxes), 1)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 0.5 + 2.3 * nrow), squeeze=False)
    for i, (comp, scale, sub) in enumerate(groups):
        for j, flux in enumerate(fluxes):
            ax = axes[i, j]
            s = sub[sub["flux"] == flux]
            if s.empty:
                ax.set_axis_off()
                continue
            order = s.groupby("model")["rank"].mean().sort_values().index.tolist()
            sites = sorted(s["site"].unique())
            rank = s.pivot_table(index="site", columns="model", values="rank", aggfunc="first").reindex(index=sites, columns=order)
            val = s.pivot_table(index="site", columns="model", values=metric, aggfunc="first").reindex(index=sites, columns=order)
            im = ax.imshow(rank.to_numpy(float), cmap="RdYlGn_r", vmin=1, vmax=max(2, len(order)), aspect="auto")
            for (a, b), v in np.ndenumerate(val.to_numpy(float)):
                if math.isfinite(v):
                    ax.text(b, a, f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(order)), order, rotation=45, ha="right", fontsize=7)
            ax.set_yticks(range(len(sites)), sites, fontsize=7)
            ax.set_title(f"{flux} {scale}, {COMPARISONS[comp]}", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=f"rank by {metric.upper()}")
    fig.suptitle(f"Rank by {metric.upper()} within each comparison (1 = best; numbers: {metric.upper()})", fontsize=9)
    fig.tight_layout()
    return fig, axes


def head_to_head(df: pd.DataFrame, focus: str = "MdPL") -> pd.DataFrame:
    """Per (comparison, scale, flux) and rival model: sites where ``focus`` has the lower RMSE, of sites both have.

    Columns: comparison, scale, flux, rival, wins, sites, focus_mean_rank, n_models.
    """
    rows = []
    for (comp, scale, flux), g in df.groupby(["comparison", "scale", "flux"]):
        f = g[g["model"] == focus].set_index("site")
        if f.empty:
            continue
        for rival, h in g[g["model"] != focus].groupby("model"):
            h = h.set_index("site")
            both = f.index.intersection(h.index)
            if len(both) == 0:
                continue
            wins = int((f.loc[both, "rmse"].astype(float) < h.loc[both, "rmse"].astype(float)).sum())
            rows.append({"comparison": comp, "scale": scale, "flux": flux, "rival": rival, "wins": wins,
                         "sites": int(len(both)), "focus_mean_rank": float(f["rank"].mean()),
                         "n_models": int(g["model"].nunique())})
    return pd.DataFrame(rows)


def ranking_summary(df: pd.DataFrame, focus: str = "MdPL", include=("held_out", "plumber2_basis", "training")) -> str:
    """Markdown: per comparison, scale and flux, the mean RMSE rank of every model and where ``focus`` loses."""
    lines = ["# Benchmark ranking (RMSE; 1 = best)", ""]
    h2h = head_to_head(df, focus)
    if not h2h.empty:
        lines += [f"## {focus} head to head: sites where {focus} has the lower RMSE", ""]
        lines += ["| comparison | scale | flux | " + f"{focus} mean rank | " + "rival: wins/sites |", "|---|---|---|---|---|"]
        for (comp, scale, flux), g in h2h.groupby(["comparison", "scale", "flux"], sort=False):
            cells = ", ".join(f"{r.rival} {r.wins}/{r.sites}" for r in g.sort_values("rival").itertuples())
            lines.append(f"| {comp} | {scale} | {flux} | {g['focus_mean_rank'].iloc[0]:.2f} of {g['n_models'].iloc[0]} | {cells} |")
        lines.append("")
    mr = mean_rank(df)
    for comp, scale, sub in _groups(df, include):
        for flux in ("Qle", "Qh", "NEE"):
            s = sub[sub["flux"] == flux]
            if s.empty:
                continue
            m = mr[(mr["comparison"] == comp) & (mr["scale"] == scale) & (mr["flux"] == flux)]
            lines.append(f"## {flux}, {scale}, {COMPARISONS[comp]}")
            lines.append("")
            lines.append("| model | mean rank | sites | mean RMSE |")
            lines.append("|---|---|---|---|")
            for r in m.itertuples():
                lines.append(f"| {r.model} | {r.mean_rank:.2f} | {r.n_sites} | {r.mean_rmse:.2f} |")
            f = s[s["model"] == focus]
            if not f.empty:
                lines.append("")
                for r in f.sort_values("site").itertuples():
                    if not math.isfinite(float(r.rank)):
                        n = int(r.n) if math.isfinite(float(r.n)) else 0
                        lines.append(f"- {r.site}: {focus} not scored (n = {n})")
                        continue
                    grp = s[s["site"] == r.site]
                    better = grp[grp["rank"] < r.rank].sort_values("rank")
                    beaten = ", ".join(f"{b.model} ({b.rmse:.1f})" for b in better.itertuples())
                    lines.append(
                        f"- {r.site}: {focus} ranks {int(r.rank)} of {int(r.n_models)} (RMSE {r.rmse:.1f})"
                        + (f"; better: {beaten}" if beaten else "; best")
                    )
            lines.append("")
    return "\n".join(lines)
