"""Which parameters move which flux: Spearman rank correlations across a perturbed parameter ensemble.

A one-at-a-glance, rank-based screen (monotone effects only) of the
ensemble the surrogates train on; it needs no extra land-model runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr


def parameter_sensitivity(params_unit, outputs: Mapping[str, Any], names: Sequence[str]):
    """Spearman rank correlation of each parameter with each output across ensemble members.

    ``params_unit`` is (members, P) (unit cube or physical: ranks are the same);
    ``outputs`` maps a flux to a (members,) summary, e.g. the member's mean Qle
    in W m-2. Returns a DataFrame (parameter x flux) in [-1, 1]: the sign says
    whether raising the parameter raises the flux, the size how strongly the
    flux's rank follows the parameter's. Members with a NaN output are dropped.
    """
    x = np.asarray(params_unit, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"params_unit: expected shape (members, {len(names)}), got {x.shape}")
    table = {}
    for flux, y in outputs.items():
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"outputs[{flux!r}]: {y.shape[0]} members, parameters have {x.shape[0]}")
        ok = np.isfinite(y)
        col = []
        for j in range(x.shape[1]):
            xj, yj = x[ok, j], y[ok]
            if ok.sum() < 3 or np.ptp(xj) == 0 or np.ptp(yj) == 0:
                col.append(np.nan)
            else:
                col.append(float(spearmanr(xj, yj).statistic))
        table[flux] = col
    return pd.DataFrame(table, index=pd.Index(list(names), name="parameter"))


def ensemble_sensitivity(store, fluxes: Sequence[str] = ("Qle", "Qh", "NEE")) -> dict:
    """Per flux, a (parameter x site) table of Spearman correlations of the member-mean flux with each parameter.

    ``store`` is an :class:`mdpl.ensemble.EnsembleStore` (or anything with
    ``sites``, ``params`` (site, member, P), ``daily[flux]`` (site, member,
    day), ``n_days`` and ``space.names``). Members that were not run (NaN) are
    dropped.
    """
    names = list(store.space.names)
    out = {}
    for flux in fluxes:
        if flux not in store.daily:
            continue
        cols = {}
        for i, site in enumerate(store.sites):
            series = store.daily[flux][i, :, : int(store.n_days[i])].astype(float)
            count = np.isfinite(series).sum(axis=1)
            mean = np.where(count > 0, np.nansum(series, axis=1) / np.maximum(count, 1), np.nan)
            params = store.params[i]
            ok = np.isfinite(params).all(axis=1) & np.isfinite(mean)
            cols[site] = parameter_sensitivity(params[ok], {flux: mean[ok]}, names)[flux]
        out[flux] = pd.DataFrame(cols)
    return out


def top_parameters(sensitivity, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` parameters with the largest mean absolute sensitivity across sites, with that value."""
    mean_abs = sensitivity.abs().mean(axis=1, skipna=True).sort_values(ascending=False)
    return [(str(k), float(v)) for k, v in mean_abs.head(n).items()]
