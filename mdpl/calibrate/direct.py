"""Direct calibration: the parameter generator trained through the differentiable land model itself.

No surrogate: every epoch runs the land model on each site's calibration
window with the generated parameters and back-propagates the multi-task loss
through the whole run (the model checkpoints each day to bound memory). It is
the reference the surrogate route is measured against. It is expensive on a
CPU, so quick mode trains on a shortened window (``calibration.direct_quick_days``
consecutive training days) for ``calibration.direct_quick_epochs`` epochs;
the result records both, and the window, in ``info``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from mdpl.calibrate.generator_training import build_generators, train_generators
from mdpl.calibrate.inputs import group_ids, priors_of, stack_inputs
from mdpl.calibrate.land_runs import WindowedProblem
from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.sensitivity import structural_free
from mdpl.calibrate.surrogate_route import calibration_tasks


def direct_budget(cfg) -> tuple[int, int]:
    """(epochs, window days; 0 = whole record) of direct calibration for ``cfg.mode``."""
    c = cfg.calibration
    if cfg.mode == "quick":
        return int(c.direct_quick_epochs), int(c.direct_quick_days)
    return int(c.direct_epochs), 0


def calibrate_direct(
    model,
    datasets: Sequence,
    features_list: Sequence,
    cfg,
    *,
    train_masks: Sequence | None = None,
    priors: np.ndarray | None = None,
    mode: str | None = None,
    epochs: int | None = None,
    window_days: int | None = None,
    allowed: np.ndarray | None = None,
    progress: bool = True,
) -> CalibrationResult:
    """Train a generator through ``model.simulate`` (gradients through the land model) on observed daily fluxes.

    ``model``: a differentiable land model (``parameter_space``, ``simulate``);
    ``datasets``/``features_list``: the sites' canonical Datasets and their
    :class:`SiteFeatures`, same order. Budget defaults from :func:`direct_budget`.
    ``allowed``: (n_sites, P) bool, parameters that may move at all (e.g. after
    :func:`mdpl.calibrate.identifiability.ridge_holds`); the rest stay at the prior.
    """
    space = model.parameter_space
    mode = mode or cfg.calibration.mode
    weights = calibration_tasks(cfg)
    e_def, w_def = direct_budget(cfg)
    epochs = e_def if epochs is None else int(epochs)
    window_days = w_def if window_days is None else int(window_days)
    problem = WindowedProblem.from_config(model, datasets, features_list, cfg, weights, window_days=window_days,
                                          train_masks=train_masks)
    inputs = stack_inputs(features_list, problem.train_masks)
    pri = priors_of(space, features_list, priors)
    groups, group_names = group_ids(features_list)

    def simulate(theta: torch.Tensor):
        return [runs[0] for runs in problem.simulate(theta[:, None, :])]  # the model casts to its own dtype

    free = structural_free(space, problem.sites, list(weights))
    if allowed is not None:
        free &= np.asarray(allowed, bool)
    torch.manual_seed(int(cfg.seed))
    gens = build_generators(len(features_list), inputs, space, mode=mode, hidden=cfg.calibration.hidden_size)
    t0 = time.perf_counter()
    fit = train_generators(gens, inputs, pri, simulate, problem.targets, weights, epochs=epochs,
                           learning_rate=cfg.calibration.direct_learning_rate, groups=groups, progress=progress,
                           desc="calibrate direct", prior_weight=cfg.calibration.prior_weight,
                           no_worse_weight=cfg.calibration.no_worse_weight, free=free)
    notes = [n for t in problem.targets for n in t.notes]
    if window_days:
        notes.append(f"direct calibration saw {window_days} training days per site for {epochs} epochs "
                     f"({cfg.mode} mode), not the whole training period")
    return CalibrationResult(
        source="direct",
        sites=problem.sites,
        param_names=list(space.names),
        param_units=list(space.units),
        params=np.asarray(fit.params, dtype=float),
        mode=mode,
        history=fit.history,
        wall_s=time.perf_counter() - t0,
        n_model_evals=fit.n_simulations,
        notes=notes,
        info={
            "epochs": epochs,
            "window_days": problem.window_days,
            "windows": {s: [str(f.days[w.start].date()), str(f.days[w.stop - 1].date())]
                        for s, f, w in zip(problem.sites, features_list, problem.windows)},
            "best_epoch": fit.best_epoch,
            "best_loss": min((h["loss"] for h in fit.history), default=float("nan")),
            "initial_loss": fit.history[0]["loss"] if fit.history else float("nan"),
            "task_weights": weights,
            "groups": dict(zip(problem.sites, [group_names[g] for g in groups])),
        },
        generator_state=[g.state_dict() for g in fit.generators],
    )

