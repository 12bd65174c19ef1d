"""mdpl.ils: the land-model interface and the embedded land surface model.

- :class:`ParameterSpace` / :data:`PARAMETER_SPACE`: calibrated parameters, bounds, per-IGBP defaults;
- :class:`LandModel` (protocol) and :class:`SimulationResult`;
- :class:`EmbeddedLSM`: the differentiable big-leaf LSM (default);
- :class:`ExternalModel`: any executable that reads ALMA forcing and writes ALMA output;
- :func:`get_model`: ``get_model("embedded" | "external", **kw)``.

Heavy modules load lazily so ``import mdpl.ils`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ParameterSpace": "mdpl.ils.parameters",
    "ParameterSpec": "mdpl.ils.parameters",
    "PARAMETER_SPACE": "mdpl.ils.parameters",
    "LandModel": "mdpl.ils.protocol",
    "SimulationResult": "mdpl.ils.protocol",
    "OUTPUTS": "mdpl.ils.protocol",
    "ForcingTensors": "mdpl.ils.forcing",
    "forcing_from_datasets": "mdpl.ils.forcing",
    "EmbeddedLSM": "mdpl.ils.model",
    "ExternalModel": "mdpl.ils.external",
    "get_model": "mdpl.ils.registry",
    "MODELS": "mdpl.ils.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mdpl.ils' has no attribute {name!r}")
