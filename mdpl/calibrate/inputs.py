"""What the parameter generator sees about a site, and how sites are grouped.

The generator input of a site is the mean and standard deviation of each
daily forcing feature over its training days (a climate summary: radiation,
temperature, humidity, rain, LAI ...) followed by its static attributes
(latitude, heights, PFT one-hot, ...). Units are those of
:data:`mdpl.data.features.FORCING_UNITS` / ``STATIC_UNITS``; the generator
normalises them across sites itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mdpl.data.features import split_periods


def train_mask_of(features, train_mask=None) -> np.ndarray:
    """The training-day mask of a site: given, else the first part of :func:`split_periods`."""
    if train_mask is None:
        return split_periods(features.days)[0]
    return np.asarray(train_mask, dtype=bool)


def train_masks_of(features_list: Sequence, train_masks: Sequence | None = None) -> list[np.ndarray]:
    """:func:`train_mask_of` for every site; ``train_masks`` None: each site's default split."""
    return [train_mask_of(f, m) for f, m in zip(features_list, train_masks or [None] * len(features_list))]


def input_names(features) -> list[str]:
    """Names of the generator inputs, in order."""
    f = list(features.forcing_names)
    return [f"{n}_mean" for n in f] + [f"{n}_std" for n in f] + list(features.static_names)


def site_inputs(features, train_mask=None) -> np.ndarray:
    """Generator input vector of one site: forcing mean and std over training days, then static attributes."""
    m = train_mask_of(features, train_mask)
    x = np.asarray(features.forcing, dtype=np.float64)[m]
    if x.shape[0] == 0:
        x = np.asarray(features.forcing, dtype=np.float64)
    return np.concatenate([x.mean(axis=0), x.std(axis=0), np.asarray(features.static, dtype=np.float64)])


def stack_inputs(features_list: Sequence, train_masks: Sequence | None = None) -> np.ndarray:
    """(n_sites, n_inputs) generator inputs of several sites."""
    masks = train_masks if train_masks is not None else [None] * len(features_list)
    return np.stack([site_inputs(f, m) for f, m in zip(features_list, masks)])


def group_ids(features_list: Sequence) -> tuple[np.ndarray, list[str]]:
    """Integer PFT-group id per site (order of first appearance) and the group names."""
    names: list[str] = []
    ids = []
    for f in features_list:
        g = str(f.pft_group)
        if g not in names:
            names.append(g)
        ids.append(names.index(g))
    return np.asarray(ids, dtype=np.int64), names


def default_priors(space, features_list: Sequence) -> np.ndarray:
    """PFT default parameters (n_sites, P) of each site (its IGBP class), clipped into ``space``'s bounds."""
    rows = [np.asarray(space.defaults(f.igbp), dtype=float) for f in features_list]
    return np.clip(np.stack(rows), space.lower, space.upper)


def priors_of(space, features_list: Sequence, priors=None) -> np.ndarray:
    """Starting parameters (n_sites, P): given ``priors`` clipped into ``space``'s bounds, else :func:`default_priors`."""
    if priors is None:
        return default_priors(space, features_list)
    return np.clip(np.asarray(priors, float), space.lower, space.upper)
