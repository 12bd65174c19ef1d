"""Land models by name: ``get_model("embedded" | "external", **kw)``.

Adding a model is one line in :data:`MODELS` ("name": "module:Class").
"""

from __future__ import annotations

import importlib

from mdpl.errors import ModelError

MODELS: dict[str, str] = {
    "embedded": "mdpl.ils.model:EmbeddedLSM",
    "external": "mdpl.ils.external:ExternalModel",
}


def get_model(name: str = "embedded", **kwargs):
    """Instantiate the land model registered as ``name`` with ``kwargs``."""
    if name not in MODELS:
        raise ModelError(f"unknown land model {name!r}; known: {', '.join(sorted(MODELS))}")
    module, cls = MODELS[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
