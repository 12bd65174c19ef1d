"""Grouped bar charts and readable tables from tidy metric tables.

A tidy table has one row per (site, flux, scale, model, ...) with one column
per metric (``rmse``, ``r``, ``nse``, ``kge``, ``bias``), as written by
``mdpl calibrate`` and ``mdpl benchmark``.
"""

from __future__ import annotations

import hashlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mdpl.plots.style import style_for


def metric_bars(df: pd.DataFrame, *, value: str, x: str = "site", hue: str = "source", ax=None,
                units: str = "", title: str | None = None, order=None, hue_order=None):
    """Grouped bars of ``value`` with one group per ``x`` and one bar per ``hue``.

    Duplicate (x, hue) rows are averaged. Returns ``(fig, ax)``; each hue's
    bar container is labelled with the hue value (and its patches carry it as ``gid``).
    """
    for col in (value, x, hue):
        if col not in df.columns:
            raise ValueError(f"metric_bars: table lacks column {col!r}; has {', '.join(map(str, df.columns))}")
    table = df.pivot_table(index=x, columns=hue, values=value, aggfunc="mean")
    if order is not None:
        table = table.reindex([o for o in order if o in table.index])
    if hue_order is not None:
        table = table[[h for h in hue_order if h in table.columns]]
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(table.index) * max(1, len(table.columns)) * 0.45 + 2), 3.4))
    else:
        fig = ax.figure
    n = max(1, len(table.columns))
    width = 0.8 / n
    xs = np.arange(len(table.index))
    for i, h in enumerate(table.columns):
        colour, _ = style_for(str(h), i)
        bars = ax.bar(xs + (i - (n - 1) / 2) * width, table[h].to_numpy(dtype=float), width, label=str(h),
                      color=colour, edgecolor="black", lw=0.4)
        bars.set_label(str(h))
        for patch in bars:
            patch.set_gid(str(h))
    ax.set_xticks(xs)
    ax.set_xticklabels([str(i) for i in table.index], rotation=30 if len(xs) > 6 else 0, ha="right" if len(xs) > 6 else "center")
    ax.axhline(0, color="black", lw=0.6)
    ax.set_ylabel(f"{value}" + (f" ({units})" if units else ""))
    ax.grid(axis="y", alpha=0.3)
    if table.size and table.notna().any().any():
        ax.legend(fontsize=8, frameon=False, ncol=min(n, 6))
    else:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig, ax


def styled_table(table: pd.DataFrame, *, caption: str, decimals: int = 2, separate_level: int | str | None = 0,
                 highlight: str | None = None):
    """A pandas Styler of ``table`` with a caption and a thick rule between row groups.

    ``separate_level``: the index level whose value changes start a new
    group (e.g. the PFT group in a KGE table); None for no rules.
    ``highlight``: 'max' or 'min' bolds the best value in each row. The
    caption should state the units. The HTML id is derived from the caption,
    so re-running a notebook gives identical output.
    """
    sty = table.style.format(precision=decimals, na_rep="–").set_caption(caption)
    sty = sty.set_uuid("t" + hashlib.sha1(caption.encode()).hexdigest()[:8])
    styles = [
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold; padding: 4px 0;"},
        {"selector": "th, td", "props": "padding: 2px 8px;"},
        {"selector": "thead th", "props": "border-bottom: 2px solid black;"},
    ]
    sty = sty.set_table_styles(styles)
    if separate_level is not None and len(table) > 1:
        idx = table.index
        keys = idx.get_level_values(separate_level) if isinstance(idx, pd.MultiIndex) else idx
        starts = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
        if isinstance(idx, pd.MultiIndex) and starts:
            rule = "border-top: 2px solid black"
            rows = [table.index[i] for i in starts]
            sty = sty.set_properties(subset=pd.IndexSlice[rows, :], **{"border-top": "2px solid black"})
            sty = sty.apply_index(lambda s: [rule if i in starts else "" for i in range(len(s))], axis=0)
    if highlight in ("max", "min"):
        sty = sty.highlight_max(axis=1, props="font-weight: bold;") if highlight == "max" else \
            sty.highlight_min(axis=1, props="font-weight: bold;")
    return sty


def text_table(table: pd.DataFrame, *, decimals: int = 2, separate_level: int | str | None = 0) -> str:
    """Plain-text rendering of ``table`` with a dashed separator line between row groups."""
    text = table.to_string(float_format=lambda v: f"{v:.{decimals}f}", na_rep="-")
    lines = text.splitlines()
    if separate_level is None or not isinstance(table.index, pd.MultiIndex) or len(table) < 2:
        return text
    header_rows = len(lines) - len(table)
    keys = table.index.get_level_values(separate_level)
    rule = "-" * max(len(line) for line in lines)
    out = lines[:header_rows] + [rule]
    for i, line in enumerate(lines[header_rows:]):
        if i > 0 and keys[i] != keys[i - 1]:
            out.append(rule)
        out.append(line)
    return "\n".join(out)
