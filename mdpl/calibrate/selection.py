"""The land-model check that picks a generator checkpoint: the verdict on training days comes from the model.

A generator trained through a surrogate ends where the *surrogate's* loss is
lowest, which is also where the surrogate's errors help most. The check runs
the land model itself with a few checkpoints of the generator (spread over
training, plus the surrogate's best) and with the PFT defaults, all in one
batched call, and keeps per site the candidate whose land-model loss on the
training days is lowest: the same weighted, variance-normalised loss the
generator minimised, on the same target basis. Held-out days are never
looked at. A site where no checkpoint beats the defaults keeps the defaults,
and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mdpl.calibrate.targets import basis_of, multitask_loss, observed_daily, site_targets
from mdpl.errors import DataError

#: key of a candidate in a params_by_source mapping: f"{source}{SEP}{epoch}"
SEP = "@"


def candidate_key(source: str, epoch: int) -> str:
    return f"{source}{SEP}{int(epoch)}"


def training_loss(features, sim: pd.DataFrame, train_mask, weights: dict[str, float], basis) -> float:
    """Sum over tasks of weight x MSE / var(obs) of a daily land-model series on measured training days
    (on the ``ef`` basis the terms of :func:`mdpl.calibrate.targets.task_terms`)."""
    days = pd.DatetimeIndex(features.days)
    if basis_of(basis) == "ef":
        return _terms_loss(features, sim.reindex(days), train_mask, weights, basis)
    total = 0.0
    for task, w in weights.items():
        obs, m, _ = observed_daily(features, task, basis if task in ("Qle", "Qh") else "observed")
        s = sim[task].reindex(days).to_numpy(float)
        use = m & np.asarray(train_mask, bool) & np.isfinite(s)
        if use.sum() < 2:
            return float("nan")
        var = float(np.var(obs[use]))
        total += w * float(np.mean((s[use] - obs[use]) ** 2)) / (var if var > 1e-12 else 1.0)
    return total


def _terms_loss(features, sim: pd.DataFrame, train_mask, weights: dict[str, float], basis) -> float:
    """The generator's own loss (:func:`mdpl.calibrate.targets.multitask_loss`) of a daily land-model series; days
    where any calibrated flux of the run is not finite are left out (NaN when fewer than 2 remain for a term)."""
    import torch

    vals = {t: sim[t].to_numpy(float) for t in weights}
    finite = np.logical_and.reduce([np.isfinite(v) for v in vals.values()])
    try:
        tgt = site_targets(features, list(weights), np.asarray(train_mask, bool) & finite, corrected=basis,
                           dtype=torch.float64)
    except DataError:  # too few usable days: this run cannot be judged
        return float("nan")
    runs = {t: torch.as_tensor(np.where(finite, v, 0.0)) for t, v in vals.items()}
    return float(multitask_loss(runs, tgt, weights)[0])


def select_candidates(features_list: Sequence, sims: Sequence[dict[str, pd.DataFrame]], split, source: str,
                      candidates: dict[int, np.ndarray], default: np.ndarray, weights: dict[str, float], basis
                      ) -> tuple[np.ndarray, list[dict], list[str]]:
    """Per site, the candidate (or the defaults) with the lowest land-model training loss.

    ``sims``: per site, source -> daily series holding ``default`` and every
    ``candidate_key(source, epoch)``. Returns the chosen (n_sites, P)
    parameters, one row per site (losses by candidate, the choice) and notes.
    """
    chosen = np.array(default, dtype=float, copy=True)
    rows, notes = [], []
    for i, (f, sim, (train, _)) in enumerate(zip(features_list, sims, split)):
        losses = {"default": training_loss(f, sim["default"], train, weights, basis)}
        for e in candidates:
            losses[str(e)] = training_loss(f, sim[candidate_key(source, e)], train, weights, basis)
        finite = {k: v for k, v in losses.items() if np.isfinite(v)}
        pick = min(finite, key=finite.get) if finite else "default"
        if pick != "default":
            chosen[i] = candidates[int(pick)][i]
        else:
            notes.append(f"{f.site}: no {source} checkpoint beat the PFT defaults on the land model's training loss; "
                         "defaults kept")
        rows.append({"site": str(f.site), "source": source, "chosen": pick,
                     **{f"loss_{k}": float(v) for k, v in losses.items()}})
    return chosen, rows, notes
