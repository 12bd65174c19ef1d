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

``ef`` changes the loss rather than the series: Qle and Qh are fitted as the
daily evaporative fraction EF = Qle / (Qle + Qh) of the tower (on days whose
observed Qle + Qh exceeds :data:`EF_MIN_ENERGY_W_M2`, where the ratio is
defined) plus the available energy, the model's Qle + Qh against the
observed Rnet - Qg (Qg = 0 where not observed). A tower that misses a share
of its turbulent energy (the closure gap) keeps its EF, so the EF term
ignores the gap, and the energy the model must partition comes from the
radiometer. A site with Rnet on fewer than half of its EF days uses the
observed Qle + Qh as available energy (noted: the gap is then fitted). Both
terms are variance-normalised like every task (EF's variance floored at
:data:`EF_VAR_FLOOR`), so each is 1 when as bad as predicting the observed
mean; each carries the mean of the Qle and Qh weights. For the per-flux
series (window choice, Sobol screen, scores) ``ef`` is the observed basis.
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
BASES = ("observed", "corrected", "closed", "bowen", "ef")
#: ef basis: days whose observed daily Qle + Qh (W m-2) is at or below this have no defined EF (night-like,
#: winter or rain days, where a ratio of small noisy numbers says nothing); the closure's good-day threshold
EF_MIN_ENERGY_W_M2 = 20.0
#: ef basis: floor of the observed EF variance that normalises the EF term (EF std 0.05)
EF_VAR_FLOOR = 0.05**2
#: ef basis: the simulated Qle + Qh in the EF denominator is clamped at this (W m-2), so EF stays finite
EF_SIM_MIN_W_M2 = 5.0
#: loss-term keys of the ef basis: evaporative fraction (1) and available energy (W m-2)
EF_TERMS = ("EF", "AE")


@dataclass
class SiteTargets:
    """Daily observations of one site for the calibration loss (units: each flux's own, e.g. W m-2)."""

    site: str
    obs: dict[str, torch.Tensor]  # task -> (days,) observed daily mean, 0 where mask is False
    mask: dict[str, torch.Tensor]  # task -> (days,) bool, measured training days
    var: dict[str, float]  # task -> observed variance over the mask (flux units squared)
    notes: list[str] = field(default_factory=list)
    basis: str = "observed"  # 'ef': Qle/Qh enter as the terms EF and AE (keys of obs/mask/var), see the module doc


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
    if basis not in ("observed", "ef") and flux in CORRECTED:
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


def ef_series(features, train_mask) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Observed daily EF (1) and available energy (W m-2) of one site with their day masks (training days only).

    EF days: Qle and Qh measured and Qle + Qh > :data:`EF_MIN_ENERGY_W_M2`. Available energy: Rnet - Qg on days
    with Rnet measured (Qg = 0 where not measured) when the site has Rnet on at least half of its EF days, else
    the observed Qle + Qh (said in the notes).
    """
    train = np.asarray(train_mask, bool)
    qle, mle, _ = observed_daily(features, "Qle", "observed")
    qh, mh, _ = observed_daily(features, "Qh", "observed")
    turb = qle + qh
    both = mle & mh & train
    ef_days = both & (turb > EF_MIN_ENERGY_W_M2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ef = np.where(ef_days, qle / np.where(ef_days, turb, 1.0), 0.0)
    notes = []
    rnet, mr = _get(features.obs, "Rnet"), _get(features.obs_mask, "Rnet")
    rnet_days = (np.asarray(mr, bool) & np.isfinite(np.asarray(rnet, float)) & train) if rnet is not None and mr is not None \
        else np.zeros_like(train)
    if ef_days.any() and (rnet_days & ef_days).sum() >= 0.5 * ef_days.sum():
        qg, mg = _get(features.obs, "Qg"), _get(features.obs_mask, "Qg")
        qg = np.zeros_like(turb) if qg is None else np.asarray(qg, float)
        g_ok = np.isfinite(qg) & (np.asarray(mg, bool) if mg is not None else True)
        ae = np.asarray(rnet, float) - np.where(g_ok, qg, 0.0)
        ae_days = rnet_days & np.isfinite(ae)
        if not g_ok.any():
            notes.append(f"{features.site}: no ground heat flux observed: available energy taken as Rnet (Qg = 0)")
    else:
        ae, ae_days = turb, both
        notes.append(f"{features.site}: Rnet observed on fewer than half of the EF days: available energy taken as the "
                     "observed Qle + Qh (the energy-balance gap is fitted)")
    return ({"EF": ef, "AE": np.where(ae_days, ae, 0.0)}, {"EF": ef_days, "AE": ae_days}, notes)


def site_targets(features, tasks, train_mask, *, corrected=False, dtype=torch.float32) -> SiteTargets:
    """Targets of one site: ``tasks`` fluxes on days where ``train_mask`` and measured (basis ``corrected``).

    On the ``ef`` basis Qle and Qh (both must be tasks) become the terms ``EF`` and ``AE`` (:func:`ef_series`).
    """
    from mdpl.errors import ConfigError

    obs, mask, var, notes = {}, {}, {}, []
    train_mask = np.asarray(train_mask, dtype=bool)
    basis = basis_of(corrected)
    if basis == "ef":
        if not {"Qle", "Qh"} <= set(tasks):
            raise ConfigError(f"calibration.target_basis ef fits the evaporative fraction: it needs both Qle and Qh "
                              f"as calibrated tasks, got {', '.join(tasks)}")
        if train_mask.shape != (features.n_days,):
            raise DataError(f"site {features.site}: {features.n_days} days but the split has {train_mask.size}")
        vals, ms, notes = ef_series(features, train_mask)
        for key in EF_TERMS:
            if ms[key].sum() < 2:
                raise DataError(f"site {features.site}: fewer than 2 training days with a defined "
                                f"{'evaporative fraction' if key == 'EF' else 'available energy'}; cannot calibrate")
            v = float(np.var(vals[key][ms[key]]))
            var[key] = max(v, EF_VAR_FLOOR) if key == "EF" else (v if math.isfinite(v) and v > 1e-12 else 1.0)
            obs[key] = torch.as_tensor(vals[key], dtype=dtype)
            mask[key] = torch.as_tensor(ms[key])
        tasks = [t for t in tasks if t not in ("Qle", "Qh")]
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
    return SiteTargets(str(features.site), obs, mask, var, notes, basis=basis if basis == "ef" else "observed")


def term_weights(targets: SiteTargets, weights: dict[str, float]) -> dict[str, float]:
    """Loss term -> weight: the tasks with non-zero weight, or on the ``ef`` basis EF and AE for Qle and Qh
    (each with the mean of the Qle and Qh weights) beside the other tasks."""
    w = {t: float(v) for t, v in weights.items() if v != 0}
    if targets.basis != "ef":
        return {t: v for t, v in w.items() if t in targets.obs}
    energy = 0.5 * (float(weights.get("Qle", 0.0)) + float(weights.get("Qh", 0.0)))
    out = {k: energy for k in EF_TERMS if energy != 0}
    out.update({t: v for t, v in w.items() if t not in ("Qle", "Qh") and t in targets.obs})
    return out


def simulated_term(sim: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """The (days,) simulated series of loss term ``key``: a task's flux, or EF / AE from the simulated Qle and Qh."""
    if key not in EF_TERMS:
        return sim[key].reshape(-1)
    qle, qh = sim["Qle"].reshape(-1), sim["Qh"].reshape(-1)
    if key == "AE":
        return qle + qh
    return qle / (qle + qh).clamp_min(EF_SIM_MIN_W_M2)


def task_terms(sim: dict[str, torch.Tensor], targets: SiteTargets, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """Per loss term with non-zero weight (:func:`term_weights`): MSE(sim, obs) / var(obs) on the masked days
    (dimensionless)."""
    terms = {}
    for task in term_weights(targets, weights):
        s = simulated_term(sim, task)
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
    w = term_weights(targets, weights)
    total = sum(w[t] * v for t, v in terms.items())
    return total, {t: float(v.detach()) for t, v in terms.items()}
