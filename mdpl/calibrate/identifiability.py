"""Ridges the targets cannot resolve: pairs of parameters that trade off on Qle/Qh but not on NEE.

The Sobol screen (:mod:`mdpl.calibrate.sensitivity`) asks whether a parameter
moves the calibrated fluxes at all. It cannot see *equifinality*: two
parameters whose effects on the targets have the same shape, so that any
move of one is undone by the other. Along such a ridge the targets are flat,
and whatever an optimiser picks on it comes from noise (the surrogate's, the
data's) - yet an uncalibrated flux may change along it. Measured on the
embedded model: Qle constrains canopy conductance ~ stomatal slope x
assimilation, so Vcmax25 and the Ball-Berry slope trade off, and the point
chosen on that ridge sets GPP and hence NEE, which nobody calibrated.

:func:`ridge_holds` finds such pairs from the perturbed-parameter ensemble
(land-model runs, no surrogate): per site, each daily flux on the measured
training days, scaled by the observed standard deviation as the loss is, is
regressed across members on the unit-cube parameters (ordinary least
squares, all parameters together). Parameter j's *target pattern* a_j is its
coefficient over the days of every calibrated flux; its *uncalibrated
pattern* c_j the same for each flux that is not a target. Two parameters are
a ridge when |cos(a_i, a_j)| >= ``cosine``. Moving along it (du_i = 1, du_j =
-a_i.a_j / a_j.a_j) leaves the targets nearly unchanged and changes the
uncalibrated fluxes by n = c_i + du_j c_j. The parameter with the larger
uncalibrated-per-target effect r = ||c|| / ||a|| is held at its PFT default
and the other carries the fit, when the ridge really moves the uncalibrated
fluxes (||n|| >= ``moves`` ||c_i||) and the held side dominates
(r_held >= ``dominance`` r_kept). Ridges are taken in order of decreasing
|cosine|; a parameter that carries one ridge is never held by a later one
(so a chain of ridges keeps one carrier). The rule is the model's and the
site's, read from the ensemble; nothing names a parameter.

Measured on the eight real towers (128-member quick ensemble): the
Vcmax25-slope ridge has |cosine| 0.97-1.00 at seven of them, with Vcmax25
4.8-9.6 times as NEE-heavy per unit of Qle/Qh effect as the slope.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: columns of the ridge table saved with a calibration (``ridges.csv``)
RIDGE_COLUMNS = ("site", "held", "kept", "cosine", "uncalibrated_move", "held_ratio", "kept_ratio")


def _patterns(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(P, D) least-squares coefficients of every day's value (members x D) on the unit-cube parameters (members x P)."""
    uc = u - u.mean(0)
    yc = y - y.mean(0)
    coef, *_ = np.linalg.lstsq(uc, yc, rcond=None)
    return coef


def site_patterns(store, features, train, tasks: Sequence[str], uncalibrated: Sequence[str], basis="observed"):
    """(a, c): (P, D_targets) and (P, D_uncalibrated) scaled patterns at one site, or None without enough members."""
    from mdpl.calibrate.sensitivity import site_ensemble

    got = site_ensemble(store, features, train, list(tasks) + list(uncalibrated), basis)
    if got is None:
        return None
    u, sims, obs, mask = got
    parts = {"a": [], "c": []}
    for k in list(tasks) + list(uncalibrated):
        if k not in sims:
            continue
        m = mask[k]
        if m.sum() < 2:
            continue
        scale = float(np.std(obs[k][m])) or 1.0
        y = sims[k][:, m] / scale
        if not np.all(np.isfinite(y)):
            good = np.isfinite(y).all(1)
            if good.sum() <= u.shape[1] + 1:
                continue
            coef = _patterns(u[good], y[good])
        else:
            coef = _patterns(u, y)
        parts["a" if k in tasks else "c"].append(coef)
    if not parts["a"]:
        return None
    a = np.concatenate(parts["a"], 1)
    c = np.concatenate(parts["c"], 1) if parts["c"] else np.zeros((a.shape[0], 0))
    return a, c


def ridge_pairs(a: np.ndarray, c: np.ndarray, names: Sequence[str], free: np.ndarray, *, cosine: float = 0.95,
                moves: float = 0.5, dominance: float = 2.0) -> list[dict]:
    """The ridges of one site among the ``free`` parameters, each with the parameter to hold (see the module)."""
    out = []
    na = np.linalg.norm(a, axis=1)
    nc = np.linalg.norm(c, axis=1)
    idx = [j for j in range(len(names)) if free[j] and na[j] > 0]
    for x, i in enumerate(idx):
        for j in idx[x + 1 :]:
            cos = float(a[i] @ a[j] / (na[i] * na[j]))
            if abs(cos) < cosine or c.shape[1] == 0:
                continue
            ri, rj = nc[i] / na[i], nc[j] / na[j]
            h, k = (i, j) if ri >= rj else (j, i)
            du = -float(a[h] @ a[k] / (na[k] ** 2))
            move = float(np.linalg.norm(c[h] + du * c[k]))
            rel = move / nc[h] if nc[h] > 0 else 0.0
            out.append({"held": names[h], "kept": names[k], "cosine": cos, "uncalibrated_move": rel,
                        "held_ratio": float(max(ri, rj)), "kept_ratio": float(min(ri, rj)),
                        "hold": bool(rel >= moves and max(ri, rj) >= dominance * min(ri, rj))})
    return out


def ridge_holds(store, features_list: Sequence, train_masks: Sequence, tasks: Sequence[str], free: np.ndarray, *,
                uncalibrated: Sequence[str] = ("NEE",), basis="observed", cosine: float = 0.95, moves: float = 0.5,
                dominance: float = 2.0) -> tuple[np.ndarray, pd.DataFrame]:
    """(free mask with ridge partners held, table of every ridge found) for the sites of ``features_list``.

    ``free`` (n_sites, P) is what the other screens left free; a held
    parameter is removed from it. Sites without ensemble members are left as
    they are. Greedy per site: pairs in order of decreasing |cosine|; a pair
    with a parameter already held, or whose held side already carries an
    earlier ridge, holds nothing.
    """
    names = list(store.space.names)
    free = np.array(free, dtype=bool, copy=True)
    uncal = [k for k in uncalibrated if k not in tasks]
    rows = []
    for i, (f, train) in enumerate(zip(features_list, train_masks)):
        got = site_patterns(store, f, train, tasks, uncal, basis)
        if got is None:
            continue
        pairs = sorted(ridge_pairs(*got, names, free[i], cosine=cosine, moves=moves, dominance=dominance),
                       key=lambda r: -abs(r["cosine"]))
        carriers: set[int] = set()
        for r in pairs:
            h, k = names.index(r["held"]), names.index(r["kept"])
            if r["hold"] and free[i, h] and free[i, k] and h not in carriers:
                free[i, h] = False
                carriers.add(k)
            else:
                r["hold"] = False
            rows.append({"site": str(f.site), **r})
    table = pd.DataFrame(rows, columns=list(RIDGE_COLUMNS) + ["hold"])
    return free, table


def held_by_site(table: pd.DataFrame | None) -> dict[str, list[str]]:
    """Per site: 'held (carried by kept, |cos| c)' for each ridge that held a parameter (for the book's text)."""
    if table is None or len(table) == 0:
        return {}
    held = table[table["hold"].astype(bool)]
    return {str(s): [f"{r.held} (carried by {r.kept}, |cos| {abs(r.cosine):.2f})" for r in g.itertuples()]
            for s, g in held.groupby("site")}
