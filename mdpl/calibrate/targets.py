"""What calibration fits: observed daily fluxes on measured training days.

One :class:`SiteTargets` per site holds, for every calibrated flux (task), the
observed daily series (zeros where not used), the boolean mask of days used
(measured AND in the training period) and the observed variance that
normalises that flux's error in the multi-task loss. ``corrected=True`` uses
the energy-balance-corrected ``Qle_cor``/``Qh_cor`` where a site has them
(PALS sites do not: they fall back to the uncorrected series, noted in
``notes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mdpl.errors import DataError

#: fluxes the land model can be calibrated against, and their corrected twins
CORRECTED = {"Qle": "Qle_cor", "Qh": "Qh_cor"}


@dataclass
class SiteTargets:
    """Daily observations of one site for the calibration loss (units: each flux's own, e.g. W m-2)."""

    site: str
    obs: dict[str, torch.Tensor]  # task -> (days,) observed daily mean, 0 where mask is False
    mask: dict[str, torch.Tensor]  # task -> (days,) bool, measured training days
    var: dict[str, float]  # task -> observed variance over the mask (flux units squared)
    notes: list[str] = field(default_factory=list)


def _get(mapping, key):
    try:
        return mapping[key]
    except (KeyError, TypeError):
        return None


def observed_daily(features, flux: str, corrected: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """(values, measured mask, name used) of one flux at daily scale from a SiteFeatures-like object."""
    name = flux
    if corrected and flux in CORRECTED:
        alt = CORRECTED[flux]
        vals, m = _get(features.obs, alt), _get(features.obs_mask, alt)
        if vals is not None and m is not None and np.any(np.asarray(m, bool) & np.isfinite(np.asarray(vals, float))):
            name = alt
    vals, m = _get(features.obs, name), _get(features.obs_mask, name)
    if vals is None or m is None:
        raise DataError(f"site {features.site}: no observed daily {name} to calibrate against")
    vals = np.asarray(vals, dtype=float)
    m = np.asarray(m, dtype=bool) & np.isfinite(vals)
    return vals, m, name


def site_targets(features, tasks, train_mask, *, corrected: bool = False, dtype=torch.float32) -> SiteTargets:
    """Targets of one site: ``tasks`` fluxes on days where ``train_mask`` and measured."""
    obs, mask, var, notes = {}, {}, {}, []
    train_mask = np.asarray(train_mask, dtype=bool)
    for task in tasks:
        vals, m, used = observed_daily(features, task, corrected)
        if corrected and task in CORRECTED and used == task:
            notes.append(f"{features.site}: no corrected {CORRECTED[task]}; calibrated against uncorrected {task}")
        if vals.shape != train_mask.shape:
            raise DataError(f"site {features.site}: {task} has {vals.size} days but the split has {train_mask.size}")
        use = m & train_mask
        if use.sum() < 2:
            raise DataError(f"site {features.site}: fewer than 2 measured training days of {used}; cannot calibrate")
        v = float(np.var(vals[use]))
        var[task] = v if math.isfinite(v) and v > 1e-12 else 1.0
        obs[task] = torch.as_tensor(np.where(use, vals, 0.0), dtype=dtype)
        mask[task] = torch.as_tensor(use)
    return SiteTargets(str(features.site), obs, mask, var, notes)


def task_terms(sim: dict[str, torch.Tensor], targets: SiteTargets, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per task with non-zero weight: MSE(sim, obs) / var(obs) on the masked days (dimensionless)."""
    terms = {}
    for task, w in weights.items():
        if w == 0 or task not in targets.obs:
            continue
        s = sim[task].reshape(-1)
        m = targets.mask[task].to(s.device)
        o = targets.obs[task].to(s)
        err = torch.where(m, s - o, torch.zeros_like(s))
        terms[task] = (err**2).sum() / m.sum().clamp_min(1) / targets.var[task]
    if not terms:
        raise ValueError(f"no task with non-zero weight among {sorted(targets.obs)}")
    return terms


def multitask_loss(
    sim: dict[str, torch.Tensor], targets: SiteTargets, weights: dict[str, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum over tasks of MSE(sim, obs) / var(obs) on the masked days.

    ``sim[task]`` is (days,) or (1, days). Each term is dimensionless (1 = as
    bad as predicting the observed mean), so fluxes of different size weigh
    as their ``weights`` say. Returns the loss tensor and the per-task terms.
    """
    terms = task_terms(sim, targets, weights)
    total = sum(weights[t] * v for t, v in terms.items())
    return total, {t: float(v.detach()) for t, v in terms.items()}
