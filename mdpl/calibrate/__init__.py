"""Training loops: surrogate fit, MdPL/dPL calibration, direct calibration, classical baseline.

Public API (imported lazily, so ``import mdpl.calibrate`` stays cheap)::

    calibrate_mdpl(surrogate, features_list, cfg, *, train_masks=None, priors=None, mode=None,
                   epochs=None, source=None, progress=True) -> CalibrationResult
    calibrate_direct(model, datasets, features_list, cfg, *, train_masks=None, priors=None, mode=None,
                     epochs=None, window_days=None, progress=True) -> CalibrationResult
    calibrate_classical(model, datasets, features_list, cfg, *, method=None, evals=None,
                        window_days=None, train_masks=None, priors=None, progress=True) -> CalibrationResult
    evaluate_sources(model, datasets, features_list, params_by_source, split, *, corrected=False,
                     progress=True) -> (records, series)
    CalibrationResult  (params (n_sites, P) physical, history, cost counters; save/load)
"""

from __future__ import annotations

_LAZY = {
    "calibrate_mdpl": "mdpl.calibrate.surrogate_route",
    "calibrate_direct": "mdpl.calibrate.direct",
    "calibrate_classical": "mdpl.calibrate.classical",
    "evaluate_sources": "mdpl.calibrate.evaluation",
    "CalibrationResult": "mdpl.calibrate.result",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mdpl.calibrate' has no attribute {name!r}")
