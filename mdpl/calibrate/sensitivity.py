"""Global sensitivity screen: which parameters can each site's targets see?

Before a generator is trained, every parameter gets, per site and flux, its
Sobol first-order (S1) and total-order (ST) index (Saltelli 2002; Jansen
estimator, via SALib) of the quantity calibration minimises: the flux's
error against the observations on the training days, normalised by their
variance (the multi-task loss term of :mod:`mdpl.calibrate.targets`). The
design is a Saltelli sample of the unit cube run through the frozen
surrogate: ``n_base x (P + 2)`` evaluations per site, cheap next to one
land-model run.

A parameter whose ST stays below ``threshold`` for every calibrated flux at a
site cannot be identified there: calibration leaves it at its PFT default
(:func:`free_mask`). Parameters that by the model's structure reach only
other fluxes (``space.reaches``: respiration enters NEE alone) stay put too,
unless one of their fluxes is a target, whatever the surrogate's noise says. Indices are also computed for NEE, uncalibrated, so
the book can show which parameter controls which flux where.

The surrogate's indices are checked on the land model itself with the
perturbed-parameter ensemble (:func:`ensemble_first_order`): a given-data
first-order index (the correlation ratio over quantile bins of each
parameter, bias-corrected) from the land model's own runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

#: fluxes whose indices are always reported (targets or not)
REPORTED_FLUXES = ("Qle", "Qh", "NEE")


def _problem(space) -> dict:
    return {"num_vars": len(space.names), "names": list(space.names), "bounds": [[0.0, 1.0]] * len(space.names)}


def _cube(space):
    """``space`` itself when it has the unit-cube maps, else a :class:`mdpl.ils.ParameterSpace` with its bounds and
    log flags (a plain space such as a test's, which has only names, bounds and log flags)."""
    if hasattr(space, "from_unit") and hasattr(space, "to_unit"):
        return space
    from mdpl.ils.parameters import ParameterSpace, ParameterSpec

    log = getattr(space, "log", np.zeros(len(space.names), bool))
    return ParameterSpace(tuple(ParameterSpec(n, "", float(lo), float(hi), bool(lg), "")
                                for n, lo, hi, lg in zip(space.names, space.lower, space.upper, log)))


def loss_terms(pred: dict[str, torch.Tensor], obs: dict[str, np.ndarray], mask: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per flux: (B,) mean squared error of ``pred[flux]`` (B, days) on ``mask`` days over the observed variance."""
    out = {}
    for k, o in obs.items():
        m = np.asarray(mask[k], bool)
        if m.sum() < 2 or k not in pred:
            continue
        p = pred[k].detach().cpu().numpy().astype(float)[:, : m.size]
        var = float(np.var(o[m]))
        out[k] = ((p[:, m] - o[m]) ** 2).mean(axis=1) / (var if var > 1e-12 else 1.0)
    return out


def site_observations(features, train_mask, fluxes: Sequence[str], basis) -> tuple[dict, dict]:
    """(obs, mask) per flux on measured training days; ``basis`` for Qle/Qh, NEE always observed."""
    from mdpl.calibrate.targets import observed_daily

    obs, mask = {}, {}
    for k in fluxes:
        try:
            v, m, _ = observed_daily(features, k, basis if k in ("Qle", "Qh") else "observed")
        except Exception:  # the site lacks this flux: no index for it
            continue
        obs[k], mask[k] = v, m & np.asarray(train_mask, bool)
    return obs, mask


def _through_last_training_day(f, train):
    """The site's features cut after its last training day (a causal surrogate needs no more)."""
    import dataclasses

    idx = np.flatnonzero(np.asarray(train, bool))
    if idx.size == 0 or idx[-1] + 1 >= f.n_days or not dataclasses.is_dataclass(f):
        return f
    n = int(idx[-1]) + 1
    return dataclasses.replace(f, days=f.days[:n], forcing=f.forcing[:n], doy=np.asarray(f.doy)[:n],
                               obs={k: v[:n] for k, v in f.obs.items()}, obs_mask={k: v[:n] for k, v in f.obs_mask.items()})


def sobol_screen(surrogate, features_list: Sequence, train_masks: Sequence, *, basis="observed", n_base: int = 128,
                 seed: int = 0, chunk: int = 1024, fluxes: Sequence[str] = REPORTED_FLUXES) -> pd.DataFrame:
    """Sobol indices of every parameter per site and flux, through ``surrogate``.

    Returns one row per (site, flux, parameter): ``S1``, ``ST`` and
    ``ST_conf`` (95 % bootstrap half-width). ``n_base`` must be a power of 2.
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    space = surrogate.space
    problem = _problem(space)
    u = sobol_sample.sample(problem, int(n_base), calc_second_order=False, seed=int(seed))
    theta = torch.as_tensor(np.asarray(_cube(space).from_unit(np.clip(u, 0.0, 1.0)), float), dtype=torch.float64)
    tasks = [k for k in fluxes if k in getattr(surrogate, "tasks", fluxes)]
    rows = []
    for f, train in zip(features_list, train_masks):
        obs, mask = site_observations(f, train, tasks, basis)
        f = _through_last_training_day(f, train)  # the surrogates are causal: later days cannot change the loss
        obs = {k: v[: f.n_days] for k, v in obs.items()}
        mask = {k: v[: f.n_days] for k, v in mask.items()}
        parts: dict[str, list[np.ndarray]] = {k: [] for k in obs}
        with torch.no_grad():
            for a in range(0, len(theta), chunk):
                terms = loss_terms(surrogate.predict(f, theta[a : a + chunk]), obs, mask)
                for k, v in terms.items():
                    parts[k].append(v)
        for k, vs in parts.items():
            if not vs:  # fewer than two measured training days of this flux: no index
                continue
            y = np.concatenate(vs)
            if not np.all(np.isfinite(y)) or np.var(y) <= 0:
                continue
            si = sobol_analyze.analyze(problem, y, calc_second_order=False, num_resamples=100, seed=int(seed))
            for j, name in enumerate(space.names):
                rows.append({"site": str(f.site), "flux": k, "parameter": name, "S1": float(si["S1"][j]),
                             "ST": float(si["ST"][j]), "ST_conf": float(si["ST_conf"][j])})
    return pd.DataFrame(rows, columns=["site", "flux", "parameter", "S1", "ST", "ST_conf"])


def free_mask(indices: pd.DataFrame, sites: Sequence[str], names: Sequence[str], tasks: Sequence[str],
              threshold: float, reaches: dict[str, Sequence[str]] | None = None) -> np.ndarray:
    """(n_sites, P) bool: parameter j is calibrated at site i when its ST reaches ``threshold`` for a calibrated flux.

    ``reaches`` (the model's ``space.reaches``): parameters that by the
    model's structure change only the fluxes listed; they stay fixed unless
    one of those is calibrated, whatever a surrogate's noise says. A site
    without indices for any task keeps every other parameter free (nothing
    was screened, so nothing is fixed).
    """
    out = np.ones((len(sites), len(names)), dtype=bool)
    for j, n in enumerate(names):
        if reaches and n in reaches and not set(reaches[n]) & set(tasks):
            out[:, j] = False
    if indices is None or indices.empty or threshold <= 0:
        return out
    sub = indices[indices.flux.isin(list(tasks))]
    for i, s in enumerate(sites):
        g = sub[sub.site == str(s)]
        if g.empty:
            continue
        st = g.groupby("parameter").ST.max()
        out[i] &= [bool(st.get(n, np.inf) >= threshold) for n in names]
    return out


def structural_free(space, sites: Sequence[str], tasks: Sequence[str]) -> np.ndarray:
    """(n_sites, P) bool: only the model's structure decides (``space.reaches``); for routes without a surrogate screen.

    Direct and classical calibration run the land model itself, so no Sobol
    screen comes with them, but a parameter that by construction cannot
    change a calibrated flux must not move there either: any move is noise.
    """
    return free_mask(None, sites, space.names, tasks, 0.0, getattr(space, "reaches", None))


def site_ensemble(store, features, train, fluxes: Sequence[str], basis="observed"):
    """One site's ensemble on its own day axis: (u (members, P) unit cube, sims {flux: (members, days)},
    obs, mask), the days outside the ensemble's span masked out; None when the store lacks the site.

    The ensemble may cover only part of the record (``ensemble.span: train``): its days are aligned to the
    site's. Only members that were run count.
    """
    site = str(features.site)
    if site not in store.sites:
        return None
    i = store.site_index(site)
    ok = store.done[i] if getattr(store, "done", None) is not None else np.ones(store.params.shape[1], bool)
    u = np.asarray(_cube(store.space).to_unit(np.asarray(store.params[i][ok], float)), float)
    obs, mask = site_observations(features, train, [k for k in fluxes if k in store.daily], basis)
    run_days = pd.DatetimeIndex(store.features[site].days) if site in store.features else pd.DatetimeIndex(features.days)
    pos = pd.DatetimeIndex(features.days).get_indexer(run_days[: int(store.n_days[i])])
    inside = pos >= 0
    obs = {k: np.where(inside, v[np.maximum(pos, 0)], np.nan) for k, v in obs.items()}
    mask = {k: inside & v[np.maximum(pos, 0)] for k, v in mask.items()}
    sims = {k: np.asarray(store.daily[k][i][ok][:, : len(pos)], float) for k in obs}
    return u, sims, obs, mask


def ensemble_first_order(store, features_list: Sequence, train_masks: Sequence, *, basis="observed", n_bins: int = 8,
                         fluxes: Sequence[str] = REPORTED_FLUXES) -> pd.DataFrame:
    """Given-data first-order indices from the land model's own ensemble runs (a check of the surrogate's).

    For each site and flux, y = the land model's loss term per member and, per
    parameter, the correlation ratio Var(E[y | bin]) / Var(y) over ``n_bins``
    quantile bins, minus its expectation for an unrelated parameter
    ((n_bins - 1) / (n - 1)). Rows: site, flux, parameter, ``S1_lsm``, ``n_members``.
    """
    rows = []
    space = store.space
    for f, train in zip(features_list, train_masks):
        got = site_ensemble(store, f, train, [k for k in fluxes if k in store.daily], basis)
        if got is None:
            continue
        u, sims, obs, mask = got
        site = str(f.site)
        for k in obs:
            terms = loss_terms({k: torch.as_tensor(sims[k])}, {k: obs[k]}, {k: mask[k]})
            if k not in terms:  # fewer than two measured training days of this flux
                continue
            y = terms[k]
            good = np.isfinite(y)
            y, uu = y[good], u[good]
            n = len(y)
            if n < 4 * n_bins or np.var(y) <= 0:
                continue
            for j, name in enumerate(space.names):
                bins = np.minimum((np.argsort(np.argsort(uu[:, j])) * n_bins) // n, n_bins - 1)
                means = np.array([y[bins == b].mean() for b in range(n_bins)])
                counts = np.bincount(bins, minlength=n_bins)
                eta = float((counts * (means - y.mean()) ** 2).sum() / n / np.var(y))
                rows.append({"site": site, "flux": k, "parameter": name,
                             "S1_lsm": eta - (n_bins - 1) / (n - 1), "n_members": int(n)})
    return pd.DataFrame(rows, columns=["site", "flux", "parameter", "S1_lsm", "n_members"])


def agreement(indices: pd.DataFrame, lsm: pd.DataFrame) -> pd.DataFrame:
    """Per site and flux: Spearman rank correlation between the surrogate's S1 and the land model's S1."""
    if indices.empty or lsm.empty:
        return pd.DataFrame(columns=["site", "flux", "spearman_s1", "top_parameter_surrogate", "top_parameter_lsm"])
    m = indices.merge(lsm, on=["site", "flux", "parameter"])
    rows = []
    for (s, k), g in m.groupby(["site", "flux"]):
        rho = g.S1.rank().corr(g.S1_lsm.rank())
        rows.append({"site": s, "flux": k, "spearman_s1": float(rho),
                     "top_parameter_surrogate": g.loc[g.ST.idxmax(), "parameter"],
                     "top_parameter_lsm": g.loc[g.S1_lsm.idxmax(), "parameter"]})
    return pd.DataFrame(rows)
