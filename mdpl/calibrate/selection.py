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

In a study (``calibration.select: land_model``): :func:`checkpoint_params`
lists the checkpoints to run beside the parameter sources, each under a
:class:`Checkpoint` key (so a checkpoint's series is never mistaken for a
source's); :func:`select_on_land_model` picks per site and route and returns
a :class:`Selection`, whose :meth:`~Selection.apply` puts the chosen series
in place of each route's. Direct and classical calibration have no
checkpoints: their own result (epoch :data:`OWN`) is checked against the
defaults the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mdpl.calibrate.seeds import route_of
from mdpl.calibrate.sources import KIND_OF
from mdpl.calibrate.surrogate_route import calibration_tasks
from mdpl.calibrate.targets import basis_of, multitask_loss, observed_daily, site_targets, target_basis
from mdpl.errors import DataError

#: how a checkpoint is written in text (fingerprints, logs): f"{source}{SEP}{epoch}"
SEP = "@"
#: the "epoch" of a route's own result (direct, classical): checked against the defaults, no checkpoints
OWN = -1


@dataclass(frozen=True)
class Checkpoint:
    """Generator checkpoint ``epoch`` of calibration ``source``: the key of its land-model run and series."""

    source: str
    epoch: int

    def __str__(self) -> str:
        return f"{self.source}{SEP}{self.epoch}"


def candidate_key(source: str, epoch: int) -> Checkpoint:
    """The key under which checkpoint ``epoch`` of ``source`` is run (:class:`Checkpoint`)."""
    return Checkpoint(str(source), int(epoch))


def _candidate_series(sim: dict, source: str, epoch: int) -> pd.DataFrame:
    """The daily series of one candidate: a checkpoint's run, or the route's own for :data:`OWN`."""
    return sim[source] if epoch == OWN else sim[candidate_key(source, epoch)]


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
    ``candidate_key(source, epoch)`` (``source`` itself for epoch :data:`OWN`). Returns the chosen (n_sites, P)
    parameters, one row per site (losses by candidate, the choice) and notes.
    """
    chosen = np.array(default, dtype=float, copy=True)
    rows, notes = [], []
    for i, (f, sim, (train, _)) in enumerate(zip(features_list, sims, split)):
        losses = {"default": training_loss(f, sim["default"], train, weights, basis)}
        for e in candidates:
            losses[str(e)] = training_loss(f, _candidate_series(sim, source, e), train, weights, basis)
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


# -- in a study: which checkpoints run, and what the check chose ---------------------------------
def generator_params(res) -> np.ndarray:
    """The (n_sites, P) parameters a route itself produced (before any land-model check replaced them)."""
    raw = res.info.get("generator_params")
    if not raw:
        return res.params
    return np.array([[raw[s][n] for n in res.param_names] for s in res.sites], dtype=float)


def checkpoint_params(cfg, calibrations: dict) -> dict[Checkpoint, np.ndarray]:
    """The generator checkpoints to run on the land model (``calibration.select: land_model``): key -> (n_sites, P)."""
    if cfg.calibration.select != "land_model":
        return {}
    return {candidate_key(src, e): p for src, res in calibrations.items() if route_of(src) in KIND_OF
            for e, p in sorted(res.candidates.items())}


@dataclass
class Selection:
    """What the land-model check chose.

    ``rows``: one per site and route (``evaluation/selection.json``);
    ``takes``: per site, route -> the key of the run whose series the route
    now has (``'default'`` or a :class:`Checkpoint`); ``updated``: the routes
    whose :class:`~mdpl.calibrate.result.CalibrationResult` changed (to save).
    """

    rows: list[dict] = field(default_factory=list)
    takes: list[dict] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def apply(self, per_site: Sequence[dict | None]) -> None:
        """Put the chosen series in place of each route's, per site (sites without series are skipped)."""
        for site, takes in zip(per_site, self.takes):
            if site:
                for src, key in takes.items():
                    site[src] = site[key]


def select_on_land_model(cfg, calibrations: dict, feats, sims, split, default_params) -> Selection:
    """Apply the land-model check to every route with candidates (checkpoints, or its own result).

    ``sims``: per site, the series of every source, ``default`` and every
    :func:`checkpoint_params` key. Each checked route's result gets the chosen
    parameters, the selection rows, the parameters it produced itself
    (``info['generator_params']``) and notes; ``sims`` are not changed (see
    :meth:`Selection.apply`).
    """
    out = Selection(takes=[{} for _ in feats])
    if cfg.calibration.select != "land_model":
        return out
    weights, basis = calibration_tasks(cfg), target_basis(cfg)
    for src, res in calibrations.items():
        raw = generator_params(res)
        candidates = res.candidates if route_of(src) in KIND_OF else {OWN: raw}  # direct, classical: own result
        if not candidates:
            continue
        chosen, sel, notes = select_candidates(feats, sims, split, src, candidates, default_params, weights, basis)
        for takes, r in zip(out.takes, sel):
            if r["chosen"] == "default":
                takes[src] = "default"
            elif int(r["chosen"]) != OWN:
                takes[src] = candidate_key(src, int(r["chosen"]))
        res.info["generator_params"] = {s: dict(zip(res.param_names, map(float, row))) for s, row in zip(res.sites, raw)}
        res.info["selection"] = sel
        res.info["land_model_checks_per_site"] = len(candidates) + 1
        res.notes = [n for n in res.notes if "checkpoint beat the PFT defaults" not in n] + notes
        res.params = chosen
        out.rows += sel
        out.updated.append(src)
    return out
