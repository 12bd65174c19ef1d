"""What calibration fits: observed daily fluxes on measured training days.

One :class:`SiteTargets` per site holds, for every calibrated flux (task), the
observed daily series (zeros where not used), the boolean mask of days used
(measured AND in the training period) and the observed variance that
normalises that flux's error in the multi-task loss.

Which observed series a flux is fitted to is the *target basis*
(:data:`BASES`): ``observed`` (the tower's own Qle/Qh), ``corrected``
(PLUMBER2's energy-balance-corrected ``Qle_cor``/``Qh_cor`` where a site has
them, else the observed series, noted), ``closed`` (``Qle_cor``/``Qh_cor``
where present, else the Bowen-ratio-preserving closure of
:mod:`mdpl.data.closure` from Rnet - Qg, as FLUXNET2015 does) and ``bowen``
(that closure everywhere Rnet is observed). ``corrected=True``/``False`` are
kept as the names of ``corrected``/``observed``. NEE is never corrected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from mdpl.errors import DataError

#: fluxes the land model can be calibrated against, and their corrected twins
CORRECTED = {"Qle": "Qle_cor", "Qh": "Qh_cor"}
#: target bases (see the module docstring)
BASES = ("observed", "corrected", "closed", "bowen")


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


def basis_of(corrected) -> str:
    """The target basis named by ``corrected``: a basis name, or True ('corrected') / False ('observed')."""
    if corrected is True:
        return "corrected"
    if corrected is False or corrected is None:
        return "observed"
    if corrected not in BASES:
        raise ValueError(f"target basis must be one of {', '.join(BASES)}, got {corrected!r}")
    return str(corrected)


def target_basis(cfg) -> str:
    """The configured target basis: ``calibration.target_basis``; ``data.corrected_fluxes: true`` means 'corrected'."""
    basis = basis_of(getattr(cfg.calibration, "target_basis", "observed"))
    if basis == "observed" and bool(getattr(cfg.data, "corrected_fluxes", False)):
        return "corrected"
    return basis


def _closed(features, flux: str):
    """(values, mask, name) of the Bowen-ratio closure of ``flux`` at one site, or None without Rnet."""
    from mdpl.data.closure import bowen_closure

    obs, m = features.obs, features.obs_mask
    if _get(obs, "Rnet") is None or not np.any(np.asarray(_get(m, "Rnet"), bool)):
        return None
    c = bowen_closure(obs["Qle"], obs["Qh"], obs["Rnet"], _get(obs, "Qg"),
                      {k: _get(m, k) for k in ("Qle", "Qh", "Rnet", "Qg")})
    if c is None:
        return None
    vals = c.qle_w_m2 if flux == "Qle" else c.qh_w_m2
    return vals, c.mask & np.isfinite(vals), f"{flux}_closed"


def observed_daily(features, flux: str, corrected=False) -> tuple[np.ndarray, np.ndarray, str]:
    """(values, measured mask, name used) of one flux at daily scale, on the target basis ``corrected``.

    ``corrected``: a basis of :data:`BASES` (or True/False for corrected/observed).
    The name used says which series it is (``Qle``, ``Qle_cor``, ``Qle_closed``).
    """
    basis = basis_of(corrected)
    name = flux
    if basis != "observed" and flux in CORRECTED:
        alt = CORRECTED[flux]
        vals, m = _get(features.obs, alt), _get(features.obs_mask, alt)
        has_cor = vals is not None and m is not None and bool(np.any(np.asarray(m, bool) & np.isfinite(np.asarray(vals, float))))
        if basis in ("corrected", "closed") and has_cor:
            name = alt
        elif basis in ("closed", "bowen"):
            closed = _closed(features, flux)
            if closed is not None:
                return closed
    vals, m = _get(features.obs, name), _get(features.obs_mask, name)
    if vals is None or m is None:
        raise DataError(f"site {features.site}: no observed daily {name} to calibrate against")
    vals = np.asarray(vals, dtype=float)
    m = np.asarray(m, dtype=bool) & np.isfinite(vals)
    return vals, m, name


def site_targets(features, tasks, train_mask, *, corrected=False, dtype=torch.float32) -> SiteTargets:
    """Targets of one site: ``tasks`` fluxes on days where ``train_mask`` and measured (basis ``corrected``)."""
    obs, mask, var, notes = {}, {}, {}, []
    train_mask = np.asarray(train_mask, dtype=bool)
    for task in tasks:
        vals, m, used = observed_daily(features, task, corrected)
        if basis_of(corrected) != "observed" and task in CORRECTED and used == task:
            notes.append(f"{features.site}: no {basis_of(corrected)} {task} series; calibrated against the observed (uncorrected) {task}")
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
