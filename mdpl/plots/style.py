"""One colour and marker per model/source, so every figure in the book agrees."""

from __future__ import annotations

import itertools

#: label -> (colour, marker); labels not listed get the next free colour
STYLES: dict[str, tuple[str, str]] = {
    "obs": ("black", "*"),
    "observed": ("black", "*"),
    "default": ("#7f7f7f", "s"),
    "dpl": ("#1f77b4", "^"),
    "mdpl": ("#d62728", "o"),
    "direct": ("#2ca02c", "D"),
    "loso": ("#ff9896", "X"),
    "classical": ("#17becf", "P"),
    "lstm": ("#9467bd", "v"),
    "jules": ("#8c564b", "p"),
    "ecland": ("#e377c2", "h"),
    "1lin": ("#bcbd22", "<"),
    "3km27": ("#ff7f0e", ">"),
}

_FALLBACK_COLOURS = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d"]
_FALLBACK_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def style_for(label: str, index: int = 0) -> tuple[str, str]:
    """Colour and marker for ``label`` (case-insensitive); unknown labels cycle a fallback palette."""
    key = str(label).lower()
    for k, v in STYLES.items():
        if key == k or key.replace("_", "").replace("-", "") == k:
            return v
    return _FALLBACK_COLOURS[index % len(_FALLBACK_COLOURS)], _FALLBACK_MARKERS[index % len(_FALLBACK_MARKERS)]


def group_colours(groups) -> dict[str, str]:
    """A stable colour per group name (e.g. PFT group), in sorted order."""
    palette = itertools.cycle(["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"])
    return {g: c for g, c in zip(sorted(set(groups)), palette)}
