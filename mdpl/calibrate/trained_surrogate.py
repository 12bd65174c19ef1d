"""A fitted surrogate of the land model: it predicts daily fluxes in physical units from physical parameters.

:class:`TrainedSurrogate` keeps the network together with its normalisation
statistics (:class:`Normalisation`), parameter space and training record;
``predict`` takes physical parameters and returns physical fluxes,
differentiable in the parameters (the calibration backpropagates through it
with the weights frozen); ``save`` and ``load`` round-trip all of it
(weights in ``surrogate.pt``, everything else in ``surrogate.json``). It is
made by :func:`mdpl.calibrate.surrogate_training.train_surrogate`.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mdpl.data.features import SiteFeatures
from mdpl.ensemble.store import space_from_manifest, space_to_manifest
from mdpl.errors import ModelError
from mdpl.io import atomic_torch_save, atomic_write_text
from mdpl.models.surrogate import build_surrogate

WEIGHTS = "surrogate.pt"
META = "surrogate.json"


@dataclass
class Normalisation:
    """Mean/std pairs (float32 lists) for forcing features, static attributes and targets."""

    forcing_mean: list[float]
    forcing_std: list[float]
    static_mean: list[float]
    static_std: list[float]
    target_mean: list[float]
    target_std: list[float]


class TrainedSurrogate:
    """A fitted surrogate: network + normalisation + parameter space + training record.

    Attributes: ``kind`` ('multitask' | 'singletask'), ``tasks`` (flux
    names), ``space`` (the :class:`~mdpl.ils.ParameterSpace` whose bounds it
    was trained on), ``model`` (the torch module), ``history`` (per-epoch
    dicts with ``train_loss``, ``val_loss`` in normalised MSE, ``lr``,
    ``seconds``), ``split`` (site -> {'train'|'val'|'test': member indices}),
    ``info`` (hyper-parameters, seed, store provenance, wall time).
    """

    def __init__(self, model, *, kind, tasks, space, forcing_names, static_names, norm: Normalisation,
                 hyper: dict, history=None, split=None, info=None, device="cpu"):
        self.model = model
        self.kind = kind
        self.tasks = list(tasks)
        self.space = space
        self.forcing_names = tuple(forcing_names)
        self.static_names = tuple(static_names)
        self.norm = norm
        self.hyper = dict(hyper)
        self.history = list(history or [])
        self.split = dict(split or {})
        self.info = dict(info or {})
        self.device = torch.device(device)
        self._stats = {k: torch.tensor(v, dtype=torch.float32, device=self.device) for k, v in asdict(norm).items()}

    def __repr__(self) -> str:
        return f"TrainedSurrogate(kind={self.kind}, tasks={self.tasks}, params={self.space.n})"

    def parameters(self):
        return self.model.parameters()

    def freeze(self) -> TrainedSurrogate:
        """Stop gradients into the weights (they still flow to the inputs)."""
        for p in self.model.parameters():
            p.requires_grad_(False)
        return self

    def to(self, device) -> TrainedSurrogate:
        self.device = torch.device(device)
        self.model.to(self.device)
        self._stats = {k: v.to(self.device) for k, v in self._stats.items()}
        return self

    # -- inputs --------------------------------------------------------------------------------
    def _site_inputs(self, f: SiteFeatures):
        if tuple(f.forcing_names) != self.forcing_names or tuple(f.static_names) != self.static_names:
            raise ModelError(f"site {f.site}: its features ({len(f.forcing_names)} forcing, {len(f.static_names)} "
                             "static) differ from those the surrogate was trained on")
        st = self._stats
        forcing = torch.as_tensor(f.forcing, dtype=torch.float32, device=self.device)
        forcing = torch.nan_to_num((forcing - st["forcing_mean"]) / st["forcing_std"])[None]
        static = torch.as_tensor(f.static, dtype=torch.float32, device=self.device)
        static = torch.nan_to_num((static - st["static_mean"]) / st["static_std"])[None]
        doy = torch.as_tensor(np.asarray(f.doy), dtype=torch.float32, device=self.device)[None]
        return forcing, doy, static

    def params_unit(self, params_physical) -> torch.Tensor:
        """Physical parameters (B, P) -> unit cube of the trained bounds (differentiable)."""
        theta = torch.as_tensor(params_physical, device=self.device)
        if not theta.is_floating_point():
            theta = theta.float()
        if theta.ndim == 1:
            theta = theta[None]
        if theta.shape[-1] != self.space.n:
            raise ModelError(f"surrogate expects {self.space.n} parameters ({', '.join(self.space.names)}), "
                             f"got {theta.shape[-1]}")
        return self.space.to_unit(theta).to(torch.float32)

    def predict_normalised(self, f: SiteFeatures, u: torch.Tensor) -> torch.Tensor:
        """(B, days, n_tasks) in normalised target units for unit-cube parameters ``u`` at one site."""
        forcing, doy, static = self._site_inputs(f)
        # cuDNN refuses RNN backward in eval mode; fall back to the native kernels on GPUs
        ctx = torch.backends.cudnn.flags(enabled=False) if self.device.type == "cuda" else nullcontext()
        with ctx:
            return self.model(forcing, doy, u, static)

    def predict(self, features, params_physical) -> dict[str, torch.Tensor]:
        """Daily fluxes {task: (B, days)} in physical units (W m-2; NEE umol m-2 s-1).

        ``features``: one :class:`SiteFeatures` with ``params_physical`` (B, P)
        (B parameter sets at that site), or a list of n sites with (n*k, P)
        parameters, site-major (k sets per site); rows of shorter sites are
        NaN-padded to the longest site's days. Differentiable w.r.t. the
        parameters.
        """
        u = self.params_unit(params_physical)
        mean, std = self._stats["target_mean"], self._stats["target_std"]
        if isinstance(features, SiteFeatures):
            y = self.predict_normalised(features, u) * std + mean
            return {t: y[..., j] for j, t in enumerate(self.tasks)}
        feats = list(features)
        if not feats or u.shape[0] % len(feats):
            raise ModelError(f"predict: {u.shape[0]} parameter sets do not split evenly over {len(feats)} sites")
        k = u.shape[0] // len(feats)
        n_max = max(f.n_days for f in feats)
        outs = []
        for i, f in enumerate(feats):
            y = self.predict_normalised(f, u[i * k : (i + 1) * k]) * std + mean
            if f.n_days < n_max:
                pad = torch.full((k, n_max - f.n_days, y.shape[-1]), float("nan"), dtype=y.dtype, device=y.device)
                y = torch.cat([y, pad], dim=1)
            outs.append(y)
        y = torch.cat(outs, dim=0)
        return {t: y[..., j] for j, t in enumerate(self.tasks)}

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory) -> Path:
        """Write ``surrogate.pt`` (weights) and ``surrogate.json`` (all else) into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        atomic_torch_save(state, d / WEIGHTS)
        meta = {
            "kind": self.kind,
            "tasks": self.tasks,
            "forcing_names": list(self.forcing_names),
            "static_names": list(self.static_names),
            "normalisation": asdict(self.norm),
            "hyper": self.hyper,
            "parameters": space_to_manifest(self.space),
            "history": self.history,
            "split": self.split,
            "info": self.info,
        }
        atomic_write_text(d / META, json.dumps(meta, indent=1))
        return d

    @classmethod
    def load(cls, directory, device="cpu") -> TrainedSurrogate:
        d = Path(directory)
        if not (d / META).is_file() or not (d / WEIGHTS).is_file():
            raise ModelError(f"{d}: no trained surrogate here (need {META} and {WEIGHTS})")
        meta = json.loads((d / META).read_text())
        model = build_surrogate(meta["kind"], tasks=meta["tasks"], **meta["hyper"])
        model.load_state_dict(torch.load(d / WEIGHTS, map_location="cpu", weights_only=True))
        out = cls(model, kind=meta["kind"], tasks=meta["tasks"], space=space_from_manifest(meta["parameters"]),
                  forcing_names=meta["forcing_names"], static_names=meta["static_names"],
                  norm=Normalisation(**meta["normalisation"]), hyper=meta["hyper"], history=meta["history"],
                  split=meta["split"], info=meta["info"])
        return out.to(device)
