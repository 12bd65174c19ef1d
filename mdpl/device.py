"""Choose one torch device and dtype per run."""

from __future__ import annotations

import torch

from mdpl.errors import ConfigError


def resolve_device(name: str = "auto") -> torch.device:
    """Return ``cuda`` when asked for ``auto`` and a GPU is present, else ``cpu``.

    ``cuda`` asked for explicitly on a machine without one is a user error.
    """
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; expected auto, cpu or cuda[:N]")
    return torch.device(name)
