"""The classical baseline: a derivative-free optimiser (CMA-ES or differential evolution) on the land model.

Per site, the optimiser searches the unit cube of the parameter space for the
set that minimises the same multi-task loss as (M)dPL, on the same
calibration window as direct calibration. Every candidate is one land-model
run of one site over the window; the result counts them
(``n_model_evals``) and the wall time, for the cost/skill comparison.
CMA-ES (package ``cma``) runs all sites in lockstep so each generation is one
batched land-model call; differential evolution (``scipy.optimize``) runs one
site at a time with its population vectorised.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mdpl.calibrate.inputs import priors_of
from mdpl.calibrate.land_runs import WindowedProblem
from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.sensitivity import structural_free
from mdpl.calibrate.surrogate_route import calibration_tasks
from mdpl.calibrate.targets import multitask_loss
from mdpl.errors import ConfigError


#: CMA-ES initial step size in the unit cube (a fifth of each parameter's range)
CMA_SIGMA0 = 0.2


def classical_budget(cfg) -> tuple[int, int]:
    """(land-model evaluations per site, window days; 0 = whole record) for ``cfg.mode``."""
    c = cfg.calibration
    if cfg.mode == "quick":
        return int(c.classical_quick_evals), int(c.direct_quick_days)
    return int(c.classical_evals), 0


def _losses(problem: WindowedProblem, params: np.ndarray, weights, dtype) -> np.ndarray:
    """Loss (n_sites, n_sets) of physical ``params`` (n_sites, n_sets, P)."""
    with torch.no_grad():
        sims = problem.simulate(torch.as_tensor(params, dtype=dtype))
    out = np.empty(params.shape[:2])
    for i, runs in enumerate(sims):
        for j, sim in enumerate(runs):
            v = float(multitask_loss(sim, problem.targets[i], weights)[0])
            out[i, j] = v if math.isfinite(v) else 1e6
    return out


def calibrate_classical(
    model,
    datasets: Sequence,
    features_list: Sequence,
    cfg,
    *,
    method: str | None = None,
    evals: int | None = None,
    window_days: int | None = None,
    train_masks: Sequence | None = None,
    priors: np.ndarray | None = None,
    allowed: np.ndarray | None = None,
    progress: bool = True,
) -> CalibrationResult:
    """Minimise the multi-task loss per site with CMA-ES ('cmaes') or differential evolution ('de').

    ``allowed``: (n_sites, P) bool, parameters that may move at all; the rest stay at the prior.
    """
    space = model.parameter_space
    method = method or cfg.calibration.classical_method
    if method not in ("cmaes", "de"):
        raise ConfigError(f"classical method must be 'cmaes' or 'de', got {method!r}")
    weights = calibration_tasks(cfg)
    e_def, w_def = classical_budget(cfg)
    evals = e_def if evals is None else int(evals)
    window_days = w_def if window_days is None else int(window_days)
    problem = WindowedProblem.from_config(model, datasets, features_list, cfg, weights, window_days=window_days,
                                          train_masks=train_masks)
    dtype = getattr(model, "dtype", torch.float32)
    n_sites, P = len(features_list), space.n
    pri = priors_of(space, features_list, priors)
    u0 = np.clip(np.asarray(space.to_unit(pri), float), 0.0, 1.0)
    free = structural_free(space, problem.sites, list(weights))  # what the targets cannot reach stays at the prior
    if allowed is not None:
        free &= np.asarray(allowed, bool)
    if not free.any(1).all():
        raise ConfigError(f"classical calibration: no parameter of the model can change the calibrated fluxes "
                          f"{sorted(weights)}")
    t0 = time.perf_counter()
    history: list[dict] = []
    n_evals = 0
    if method == "cmaes":
        import cma

        popsize = 4 + int(3 * math.log(max(int(free.sum(1).max()), 2)))
        n_gen = max(1, evals // popsize)
        es = [cma.CMAEvolutionStrategy(u0[i, free[i]], CMA_SIGMA0, {"bounds": [0.0, 1.0], "popsize": popsize,
                                                              "seed": int(cfg.seed) + 1 + i, "verbose": -9})
              for i in range(n_sites)]
        best_u = u0.copy()
        best_f = np.full(n_sites, np.inf)
        for gen in tqdm(range(n_gen), desc="calibrate classical (CMA-ES)", disable=not progress, leave=False):
            cand = np.repeat(u0[:, None, :], popsize, axis=1)  # (site, pop, P); fixed parameters at the prior
            for i, e in enumerate(es):
                cand[i][:, free[i]] = np.asarray(e.ask(), float)
            f = _losses(problem, np.asarray(space.from_unit(np.clip(cand, 0.0, 1.0))), weights, dtype)
            n_evals += n_sites * popsize
            for i, e in enumerate(es):
                e.tell(list(cand[i][:, free[i]]), list(f[i]))
                j = int(np.argmin(f[i]))
                if f[i, j] < best_f[i]:
                    best_f[i], best_u[i] = f[i, j], cand[i, j]
            history.append({"generation": gen, "loss": float(best_f.mean()), "evals": n_evals})
    else:
        from scipy.optimize import differential_evolution

        popsize = max(5, int(math.ceil(10 / P)))  # scipy's population is popsize * (free parameters)
        best_u = u0.copy()
        best_f = np.full(n_sites, np.inf)
        for i in tqdm(range(n_sites), desc="calibrate classical (DE)", disable=not progress, leave=False):
            n_free = int(free[i].sum())
            maxiter = max(1, evals // (popsize * n_free) - 1)

            def fun(x, i=i):
                nonlocal n_evals
                X = np.atleast_2d(np.asarray(x, float).T)  # (S, free parameters)
                full = np.tile(u0[:, None, :], (1, X.shape[0], 1))
                full[i][:, free[i]] = X
                theta = np.asarray(space.from_unit(np.clip(full, 0.0, 1.0)))
                sub = WindowedProblem.__new__(WindowedProblem)
                sub.__dict__.update(problem.__dict__)
                sub.windows, sub.groups, sub.sites = [problem.windows[i]], [[0]], [problem.sites[i]]
                f = _losses(sub, theta[i : i + 1], weights, dtype)[0]
                n_evals += X.shape[0]
                return f

            res = differential_evolution(fun, [(0.0, 1.0)] * n_free, x0=u0[i, free[i]], popsize=popsize, maxiter=maxiter,
                                         seed=int(cfg.seed) + i, vectorized=True, polish=False, tol=0, updating="deferred")
            best_u[i, free[i]], best_f[i] = res.x, res.fun
            history.append({"site": problem.sites[i], "loss": float(res.fun), "evals": n_evals})
    params = np.asarray(space.from_unit(np.clip(best_u, 0.0, 1.0)), dtype=float)
    params = np.clip(params, space.lower, space.upper)
    notes = [n for t in problem.targets for n in t.notes]
    if window_days:
        notes.append(f"classical calibration saw {window_days} training days per site ({cfg.mode} mode)")
    return CalibrationResult(
        source="classical",
        sites=problem.sites,
        param_names=list(space.names),
        param_units=list(space.units),
        params=params,
        mode="site",
        history=history,
        wall_s=time.perf_counter() - t0,
        n_model_evals=n_evals,
        notes=notes,
        info={"method": method, "evals_per_site": n_evals // max(n_sites, 1), "window_days": problem.window_days,
              "best_loss": {s: float(v) for s, v in zip(problem.sites, best_f)}, "task_weights": weights},
    )
