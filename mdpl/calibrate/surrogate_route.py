"""MdPL and dPL calibration: train the parameter generator through a frozen surrogate.

The surrogate (any object with ``.space``, ``.kind`` and
``.predict(features, params (B, P) physical) -> {task: (B, days)}``,
differentiable in the parameters, e.g.
:class:`mdpl.calibrate.surrogate_training.TrainedSurrogate`) stands in for
the land model. Its weights are frozen; only the generator learns. A
multi-task surrogate gives the ``'mdpl'`` source, a single-task one ``'dpl'``.
The generator maps onto the bounds the surrogate was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from mdpl.calibrate.targets import target_basis
from mdpl.calibrate.generator_training import build_generators, checkpoint_epochs, train_generators
from mdpl.calibrate.inputs import group_ids, priors_of, stack_inputs, train_masks_of
from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.targets import site_targets
from mdpl.errors import ConfigError


def calibration_tasks(cfg) -> dict[str, float]:
    """Non-zero task weights of the configuration (task -> weight)."""
    w = {k: float(v) for k, v in cfg.calibration.task_weights.items() if float(v) != 0.0}
    bad = [k for k in w if k not in ("Qle", "Qh", "NEE")]
    if bad or not w:
        raise ConfigError(f"calibration.task_weights: need at least one of Qle, Qh, NEE with a non-zero weight, got {cfg.calibration.task_weights}")
    return w


def generator_epochs(cfg) -> int:
    """Generator training epochs: ``calibration.quick_epochs`` in quick mode, else ``calibration.epochs``."""
    return int(cfg.calibration.quick_epochs if cfg.mode == "quick" else cfg.calibration.epochs)


def source_of(surrogate) -> str:
    """'mdpl' for a multi-task surrogate, 'dpl' for a single-task one."""
    return "dpl" if str(getattr(surrogate, "kind", "multitask")) == "singletask" else "mdpl"


def calibrate_with_surrogate(
    surrogate,
    features_list: Sequence,
    cfg,
    *,
    train_masks: Sequence | None = None,
    priors: np.ndarray | None = None,
    mode: str | None = None,
    epochs: int | None = None,
    source: str | None = None,
    allowed: np.ndarray | None = None,
    progress: bool = True,
) -> CalibrationResult:
    """Train a generator so ``surrogate(forcing, g(x))`` fits observed daily fluxes on training days.

    ``features_list``: :class:`mdpl.data.features.SiteFeatures` of the sites.
    ``train_masks``: per-site boolean day masks (default: :func:`split_periods`).
    ``priors``: (n_sites, P) physical parameters g starts from (default: PFT
    defaults). ``mode``: 'site' | 'pft' | 'all' (default ``cfg.calibration.mode``).
    Uses ``cfg.calibration`` (task weights, epochs, learning rate, hidden size),
    ``target_basis(cfg)`` and ``cfg.seed``. ``allowed``: (n_sites, P) bool, parameters that may
    move at all (:func:`mdpl.calibrate.identifiability.ridge_holds`), on top of the screen.
    """
    space = surrogate.space
    mode = mode or cfg.calibration.mode
    weights = calibration_tasks(cfg)
    missing = [t for t in weights if t not in getattr(surrogate, "tasks", weights)]
    if missing:
        raise ConfigError(f"calibration.task_weights names {', '.join(missing)} but the surrogate predicts only {', '.join(surrogate.tasks)}")
    masks = train_masks_of(features_list, train_masks)
    targets = [site_targets(f, weights, m, corrected=target_basis(cfg)) for f, m in zip(features_list, masks)]
    inputs = stack_inputs(features_list, masks)
    pri = priors_of(space, features_list, priors)
    groups, group_names = group_ids(features_list)

    for p in getattr(surrogate, "parameters", lambda: [])():
        p.requires_grad_(False)
    net = getattr(surrogate, "model", None)
    if isinstance(net, torch.nn.Module):
        net.eval()

    def simulate(theta: torch.Tensor):
        out = []
        for i, f in enumerate(features_list):
            pred = surrogate.predict(f, theta[i : i + 1])
            out.append({t: pred[t].reshape(-1) for t in weights})
        return out

    c = cfg.calibration
    sensitivity = None
    free = None
    if getattr(c, "screen", False):
        from mdpl.calibrate.sensitivity import free_mask, sobol_screen

        sensitivity = sobol_screen(surrogate, features_list, masks, basis=target_basis(cfg), n_base=c.screen_samples,
                                   seed=cfg.seed)
        free = free_mask(sensitivity, [str(f.site) for f in features_list], space.names, list(weights),
                         c.screen_threshold, getattr(space, "reaches", None))
    if allowed is not None:
        allowed = np.asarray(allowed, bool)
        free = allowed.copy() if free is None else free & allowed
    if sensitivity is not None:
        sensitivity = sensitivity.assign(calibrated=[bool(free[[str(f.site) for f in features_list].index(r.site),
                                                                 space.names.index(r.parameter)])
                                                     for r in sensitivity.itertuples()])
    n_epochs = generator_epochs(cfg) if epochs is None else epochs
    checkpoints = checkpoint_epochs(n_epochs, int(getattr(c, "candidates", 0))) \
        if getattr(c, "select", "surrogate") == "land_model" else []
    torch.manual_seed(int(cfg.seed))
    gens = build_generators(len(features_list), inputs, space, mode=mode, hidden=cfg.calibration.hidden_size,
                            trust_radius=cfg.calibration.trust_radius)
    src = source or source_of(surrogate)
    t0 = time.perf_counter()
    fit = train_generators(
        gens,
        inputs,
        pri,
        simulate,
        targets,
        weights,
        epochs=n_epochs,
        learning_rate=cfg.calibration.learning_rate,
        groups=groups,
        progress=progress,
        desc=f"calibrate {src}",
        patience=cfg.calibration.patience,
        prior_weight=cfg.calibration.prior_weight,
        no_worse_weight=cfg.calibration.no_worse_weight,
        free=free,
        checkpoints=checkpoints,
    )
    notes = [n for t in targets for n in t.notes]
    return CalibrationResult(
        source=src,
        sites=[str(f.site) for f in features_list],
        param_names=list(space.names),
        param_units=list(space.units),
        params=np.asarray(fit.params, dtype=float),
        mode=mode,
        history=fit.history,
        wall_s=time.perf_counter() - t0,
        n_surrogate_evals=fit.n_simulations,
        notes=notes,
        info={
            "best_epoch": fit.best_epoch,
            "best_loss": min((h["loss"] for h in fit.history), default=float("nan")),
            "initial_loss": fit.history[0]["loss"] if fit.history else float("nan"),
            "task_weights": weights,
            "target_basis": target_basis(cfg),
            "groups": dict(zip([str(f.site) for f in features_list], [group_names[g] for g in groups])),
            "surrogate_kind": str(getattr(surrogate, "kind", "?")),
            "screened": sensitivity is not None,
            "screen_threshold": float(c.screen_threshold) if sensitivity is not None else None,
            "fixed_parameters": ({str(f.site): [n for n, k in zip(space.names, row) if not k]
                                  for f, row in zip(features_list, free)} if free is not None else {}),
        },
        generator_state=[g.state_dict() for g in fit.generators],
        candidates=fit.candidates if checkpoints else {},
        tables={"sensitivity": sensitivity} if sensitivity is not None else {},
    )


def calibrate_mdpl(surrogate, features_list: Sequence, cfg, **kw) -> CalibrationResult:
    """MdPL (multi-task surrogate) or dPL (single-task surrogate) calibration; see :func:`calibrate_with_surrogate`."""
    return calibrate_with_surrogate(surrogate, features_list, cfg, **kw)
