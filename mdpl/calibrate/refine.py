"""Surrogate refinement: teach the surrogate where the calibration went.

A generator trained through a frozen surrogate can settle where the
surrogate is wrong: corners of the parameter box that a space-filling design
barely samples. One refinement round runs the land model at the calibrated
parameters and at a small cloud around them (Gaussian in the unit cube,
clipped to the box), appends those runs to the ensemble, and retrains the
surrogate on the lot; calibrating again with it then trusts the surrogate
only where the land model has now been seen.

:func:`mdpl.study.run_study` runs ``calibration.refine_rounds`` rounds for
MdPL and dPL (off by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mdpl.errors import ConfigError


def parameter_cloud(space, centre: np.ndarray, n_members: int, spread: float, seed: int = 0) -> np.ndarray:
    """(site, member, P) physical sets: member 0 is ``centre`` (site, P), the rest centre + N(0, spread) in the unit
    cube, clipped to the box."""
    if n_members < 1 or not 0.0 < spread <= 1.0:
        raise ConfigError(f"refinement needs n_members >= 1 and 0 < spread <= 1, got {n_members}, {spread}")
    u = np.clip(np.asarray(space.to_unit(np.asarray(centre, dtype=float))), 0.0, 1.0)
    rng = np.random.default_rng([int(seed), 4242])
    cloud = np.clip(u[:, None, :] + spread * rng.standard_normal((u.shape[0], n_members, u.shape[1])), 0.0, 1.0)
    cloud[:, 0] = u
    return np.clip(np.asarray(space.from_unit(cloud)), space.lower, space.upper)


def refine_round(store, datasets, model, centre: np.ndarray, surrogate_cfg, store_dir, *, kind: str = "multitask",
                 n_members: int = 24, spread: float = 0.08, seed: int = 0, ensemble_kw: dict | None = None,
                 device="cpu", progress: bool = False):
    """One round: run the cloud around ``centre`` into ``store_dir``, join it to ``store``, retrain a ``kind``
    surrogate on the joined ensemble. Returns (joined store, trained surrogate).

    ``datasets`` must be the sites of ``store`` in the same order; ``ensemble_kw`` passes the ensemble's own
    settings (span, max_pad_days, min_measured_fraction, batch_size) so the new runs cover the same days.
    """
    from mdpl.calibrate.surrogate_training import train_surrogate
    from mdpl.ensemble import run_ensemble

    thetas = parameter_cloud(store.space, centre, n_members, spread, seed)
    extra = run_ensemble(datasets, model, store.space, n_members, Path(store_dir), seed=seed, progress=progress,
                         thetas=thetas, **(ensemble_kw or {}))
    joined = store.concat(extra)
    surrogate = train_surrogate(joined, surrogate_cfg, kind=kind, device=device, seed=seed, progress=progress)
    return joined, surrogate
