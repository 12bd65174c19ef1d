"""Fit a surrogate to a perturbed-parameter ensemble; the trained surrogate predicts in physical units.

:func:`train_surrogate` splits each site's members into training,
validation (early stopping) and test (fidelity report) parameter sets,
computes normalisation statistics on the training part only (forcing per
feature over the training sites' days, static attributes over sites, targets
per flux over training members and days), and fits the network with AdamW, a
cosine learning-rate decay and gradient clipping. Batches hold members of one
site, so the multi-task model encodes that site's forcing once per batch.

:class:`TrainedSurrogate` keeps the network together with its statistics,
parameter space and training record; ``predict`` takes physical parameters
and returns physical fluxes, differentiable in the parameters (the
calibration backpropagates through it with the weights frozen); ``save`` and
``load`` round-trip all of it (weights in ``surrogate.pt``, everything else
in ``surrogate.json``).
"""

from __future__ import annotations

import copy
import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mdpl.data.features import SiteFeatures
from mdpl.ensemble.store import _atomic_write, space_from_manifest, space_to_manifest
from mdpl.errors import ConfigError, DataError, ModelError
from mdpl.models.surrogate import build_surrogate

WEIGHTS = "surrogate.pt"
META = "surrogate.json"
_STD_FLOOR = 1e-6


@dataclass
class Normalisation:
    """Mean/std pairs (float32 lists) for forcing features, static attributes and targets."""

    forcing_mean: list[float]
    forcing_std: list[float]
    static_mean: list[float]
    static_std: list[float]
    target_mean: list[float]
    target_std: list[float]


def _mean_std(x: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    m = np.nanmean(x, axis=axis)
    s = np.nanstd(x, axis=axis)
    s = np.where(np.isfinite(s) & (s > _STD_FLOOR), s, 1.0)
    return np.nan_to_num(m).astype(np.float64), s.astype(np.float64)


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
        _atomic_write(d / WEIGHTS, lambda p: torch.save(state, p))
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
        _atomic_write(d / META, lambda p: p.write_text(json.dumps(meta, indent=1)))
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


# -- training ----------------------------------------------------------------------------------
def split_members(n_members: int, sites, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """Per site, a seeded random split of member indices into train / val / test (each non-empty if possible)."""
    out = {}
    for i, s in enumerate(sites):
        perm = np.random.default_rng([int(seed), i]).permutation(n_members)
        n_test = int(round(test_fraction * n_members)) if test_fraction > 0 else 0
        n_val = int(round(val_fraction * n_members)) if val_fraction > 0 else 0
        if test_fraction > 0:
            n_test = max(n_test, 1)
        if val_fraction > 0:
            n_val = max(n_val, 1)
        if n_members - n_test - n_val < 1:
            raise ConfigError(f"ensemble of {n_members} members too small for val {val_fraction} + test {test_fraction}")
        out[s] = {
            "test": sorted(int(m) for m in perm[:n_test]),
            "val": sorted(int(m) for m in perm[n_test : n_test + n_val]),
            "train": sorted(int(m) for m in perm[n_test + n_val :]),
        }
    return out


def _hyper_from_cfg(cfg, kind: str, n_forcing: int, n_params: int, n_static: int) -> dict:
    hyper = dict(n_forcing=n_forcing, n_params=n_params, n_static=n_static)
    if kind == "multitask":
        hyper.update(hidden_size=cfg.hidden_size, n_experts=cfg.n_experts, task_experts=cfg.task_experts,
                     expert_size=cfg.expert_size or cfg.hidden_size, state_size=cfg.state_size)
    else:
        hyper.update(hidden_size=cfg.singletask_hidden_size or matched_singletask_hidden(cfg, n_forcing, n_params, n_static))
    return hyper


def matched_singletask_hidden(cfg, n_forcing: int, n_params: int, n_static: int) -> int:
    """LSTM width of the single-task surrogate whose weight count is closest to the multi-task one's.

    MdPL against dPL is then a comparison of architectures (shared encoder and
    gated heads vs one network per flux), not of network size.
    """
    from mdpl.models.surrogate import build_surrogate

    def count(kind, **h):
        net = build_surrogate(kind, n_forcing=n_forcing, n_params=n_params, n_static=n_static, tasks=cfg.tasks, **h)
        return sum(p.numel() for p in net.parameters())

    target = count("multitask", hidden_size=cfg.hidden_size, n_experts=cfg.n_experts, task_experts=cfg.task_experts,
                   expert_size=cfg.expert_size or cfg.hidden_size, state_size=cfg.state_size)
    lo, hi = 1, 8 * max(int(cfg.hidden_size), 1)  # the weight count grows with the width: bisect
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count("singletask", hidden_size=mid) <= target else (lo, mid)
    return min((lo, hi), key=lambda h: abs(count("singletask", hidden_size=h) - target))


def _masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ok = torch.isfinite(target)
    diff = torch.where(ok, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return (diff**2).sum() / ok.sum().clamp_min(1)


def train_surrogate(
    store,
    cfg,
    *,
    kind: str | None = None,
    device="cpu",
    seed: int = 0,
    val_fraction: float | None = None,
    test_fraction: float | None = None,
    progress: bool = True,
) -> TrainedSurrogate:
    """Fit a ``kind`` surrogate ('multitask' | 'singletask', default ``cfg.kind``) to an :class:`EnsembleStore`.

    ``cfg``: a :class:`mdpl.config.SurrogateConfig` (tasks, sizes, epochs,
    batch size, learning rate, patience, split fractions). Deterministic for
    a given ``seed`` on CPU. Returns the weights of the epoch with the lowest
    validation loss.

    Steps: split each site's runnable members, normalise on the training
    part, build the network, then train epochs of batches drawn by
    :class:`_Batches` (one seeded generator for member order, windows and
    site order) with early stopping on the validation loss.
    """
    kind = kind or cfg.kind
    check_store(store)
    tasks = list(cfg.tasks)
    missing = [t for t in tasks if t not in store.daily]
    if missing:
        raise ConfigError(f"surrogate.tasks: {', '.join(missing)} not in the ensemble {store.path} (has {', '.join(store.daily)})")
    val_fraction = cfg.val_fraction if val_fraction is None else val_fraction
    test_fraction = cfg.test_fraction if test_fraction is None else test_fraction
    device = torch.device(device)
    t_start = time.perf_counter()
    sites = list(store.sites)
    feats = [store.features[s] for s in sites]
    split, failed = _runnable_split(store, tasks, val_fraction, test_fraction, seed)
    norm = _normalisation(store, feats, split, tasks)

    torch.manual_seed(int(seed))
    hyper = _hyper_from_cfg(cfg, kind, feats[0].forcing.shape[1], store.space.n, feats[0].static.shape[0])
    model = build_surrogate(kind, tasks=tasks, **hyper).to(device)
    sur = TrainedSurrogate(model, kind=kind, tasks=tasks, space=store.space, forcing_names=feats[0].forcing_names,
                           static_names=feats[0].static_names, norm=norm, hyper=hyper, split=split, device=device)
    data = _site_tensors(sur, store, feats, tasks, norm, device)
    batches = _Batches(data, [split[s]["train"] for s in sites], cfg, np.random.default_rng(int(seed)), device)
    opt, sched = _optimiser(model, cfg, max(1, cfg.epochs * batches.steps_per_epoch))

    best, best_state, bad_epochs, history = math.inf, None, 0, []
    val_members = [split[s]["val"] for s in sites]
    has_val = any(val_members)
    bar = tqdm(range(cfg.epochs), desc=f"surrogate {kind}", unit="epoch", disable=not progress)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        losses = [_train_step(model, opt, sched, batch) for batch in batches.epoch()]
        train_loss = float(np.mean(losses))
        val_loss = _validation_loss(model, data, val_members, device) if has_val else train_loss
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - t0})
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        if not math.isfinite(train_loss):
            raise ModelError(f"surrogate {kind} training diverged at epoch {epoch} (loss {train_loss})")
        if val_loss < best - 1e-6:
            best, best_state, bad_epochs = val_loss, copy.deepcopy(model.state_dict()), 0
        else:
            bad_epochs += 1
            if cfg.patience and bad_epochs >= cfg.patience:
                break
    bar.close()
    opt.zero_grad(set_to_none=True)
    if best_state is not None:
        model.load_state_dict(best_state)
    sur.history = history
    sur.info = {
        "kind": kind,
        "seed": int(seed),
        "epochs_run": len(history),
        "best_epoch": int(np.argmin([h["val_loss"] for h in history])) if history else -1,
        "best_val_loss": best,
        "wall_s": time.perf_counter() - t_start,
        "n_weights": int(sum(p.numel() for p in model.parameters())),
        "config": asdict(cfg) if hasattr(cfg, "__dataclass_fields__") else dict(cfg),
        "store": str(store.path),
        "store_model": store.manifest.get("model", {}),
        "store_seed": store.manifest.get("seed"),
        "failed_members": failed,
        "device": str(device),
    }
    return sur


def _runnable_split(store, tasks, val_fraction: float, test_fraction: float, seed: int) -> tuple[dict, dict]:
    """:func:`split_members` without the members the land model could not run (they carry no information).

    Returns (site -> {train, val, test} member lists, site -> failed members).
    """
    sites = list(store.sites)
    split = split_members(store.n_members, sites, val_fraction, test_fraction, seed)
    ok = store.finite(tasks)
    failed = {s: [int(m) for m in np.flatnonzero(~ok[i])] for i, s in enumerate(sites) if not ok[i].all()}
    for i, s in enumerate(sites):
        split[s] = {part: [m for m in idx if ok[i, m]] for part, idx in split[s].items()}
        if not split[s]["train"]:
            raise DataError(f"site {s}: no finite land-model run among the training members of {store.path}")
    return split, failed


def _normalisation(store, feats, split: dict, tasks) -> Normalisation:
    """Statistics on the training part only: forcing over the sites' days, static over sites, targets per flux."""
    f_mean, f_std = _mean_std(np.concatenate([f.forcing for f in feats], axis=0), axis=0)
    s_mean, s_std = _mean_std(np.stack([f.static for f in feats]), axis=0)
    tr_vals = [np.concatenate([store.member_series(s, t)[split[s]["train"]].ravel() for s in store.sites]) for t in tasks]
    t_mean = np.array([np.nanmean(v) for v in tr_vals])
    t_std = np.array([np.nanstd(v) for v in tr_vals])
    t_std = np.where(t_std > _STD_FLOOR, t_std, 1.0)
    return Normalisation(*(a.astype(float).tolist() for a in (f_mean, f_std, s_mean, s_std, t_mean, t_std)))


def _site_tensors(sur: TrainedSurrogate, store, feats, tasks, norm: Normalisation, device) -> list[tuple]:
    """Per site (forcing, doy, static, parameters in the unit cube, normalised targets (M, T, K); NaN = no run)."""
    tm = torch.tensor(norm.target_mean, dtype=torch.float32, device=device)
    ts = torch.tensor(norm.target_std, dtype=torch.float32, device=device)
    data = []
    for s, f in zip(store.sites, feats):
        forcing, doy, static = sur._site_inputs(f)
        u = sur.params_unit(torch.as_tensor(store.params[store.site_index(s)], dtype=torch.float64))
        y = np.stack([store.member_series(s, t) for t in tasks], axis=-1)  # (M, T, K)
        y = (torch.as_tensor(y, dtype=torch.float32, device=device) - tm) / ts
        data.append((forcing, doy, static, u, y))
    return data


def _optimiser(model, cfg, n_steps: int):
    """AdamW with a linear warm-up over the first 5 % of steps and a cosine decay to 5 % of the learning rate."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = max(1, n_steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(i, n_steps) / n_steps)))
    )
    return opt, sched


class _Batches:
    """Training batches: ``cfg.sites_per_batch`` sites at a time, ``k`` members each, in a random time window.

    One seeded generator drives everything random here, in a fixed order
    (site order per round; per site: the window start, then its members), so
    a run is reproducible from the seed.
    """

    def __init__(self, data: list[tuple], train_members: list[list[int]], cfg, rng: np.random.Generator, device):
        self.data, self.train, self.rng, self.device = data, train_members, rng, device
        n_sites = len(data)
        self.window, self.warmup = int(cfg.window_days), int(cfg.warmup_days)
        self.sites_per_batch = max(1, min(n_sites, cfg.sites_per_batch or n_sites))
        self.k = max(1, cfg.batch_size // self.sites_per_batch)
        self.rounds_per_epoch = max(1, math.ceil(max(len(m) for m in train_members) / self.k))
        self.groups_per_round = max(1, math.ceil(n_sites / self.sites_per_batch))
        self.steps_per_epoch = self.rounds_per_epoch * self.groups_per_round
        self.queues: dict[int, list] = {i: [] for i in range(n_sites)}

    def epoch(self):
        """The batches of one epoch (a fresh random site order each round)."""
        for _ in range(self.steps_per_epoch // self.groups_per_round):
            order = self.rng.permutation(len(self.data))
            for j in range(0, len(self.data), self.sites_per_batch):
                yield self.batch(order[j : j + self.sites_per_batch])

    def members(self, i: int) -> np.ndarray:
        """Next k training members of site i (a reshuffled cycle, so every member comes up each epoch)."""
        out = []
        while len(out) < self.k:
            if not self.queues[i]:
                self.queues[i] = list(self.rng.permutation(self.train[i]))
            out.append(self.queues[i].pop())
        return np.asarray(out)

    def batch(self, site_ids) -> tuple[torch.Tensor, ...]:
        """(forcing, doy, parameters, static, targets) of the sites' windows, padded to the longest one.

        A window that does not start on the first day has its first
        ``warmup_days`` targets masked: the network's state is still spinning
        up from the static projection there.
        """
        rows = []
        for i in site_ids:
            forcing, doy, static, u, y = self.data[i]
            t_i = forcing.shape[1]
            length = t_i if self.window <= 0 else min(self.window, t_i)
            s0 = 0 if (length == t_i or self.rng.random() < 0.25) else int(self.rng.integers(0, t_i - length + 1))
            idx = torch.as_tensor(self.members(i), device=self.device)
            yy = y[idx, s0 : s0 + length].clone()
            if s0 > 0:
                yy[:, : self.warmup] = float("nan")
            rows.append((forcing[:, s0 : s0 + length], doy[:, s0 : s0 + length], static, u[idx], yy))
        n_max = max(r[0].shape[1] for r in rows)

        def pad(x, v):
            return torch.nn.functional.pad(x, (0, 0) * (x.ndim - 2) + (0, n_max - x.shape[1]), value=v)

        forcing = torch.cat([pad(r[0], 0.0) for r in rows])
        doy = torch.cat([torch.nn.functional.pad(r[1], (0, n_max - r[1].shape[1]), value=1.0) for r in rows])
        static = torch.cat([r[2] for r in rows])
        u = torch.cat([r[3] for r in rows])
        y = torch.cat([pad(r[4], float("nan")) for r in rows])
        return forcing, doy, u, static, y


def _train_step(model, opt, sched, batch) -> float:
    """One optimiser step on the masked MSE of a batch (gradient norm clipped at 1); returns the loss."""
    forcing, doy, u, static, y = batch
    loss = _masked_mse(model(forcing, doy, u, static), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


@torch.no_grad()
def _validation_loss(model, data: list[tuple], val_members: list[list[int]], device) -> float:
    """Masked MSE over every site's validation members, weighted by their number."""
    tot, n = 0.0, 0
    for (forcing, doy, static, u, y), idx in zip(data, val_members):
        if not idx:
            continue
        ii = torch.as_tensor(idx, device=device)
        tot += float(_masked_mse(model(forcing, doy, u[ii], static), y[ii])) * len(idx)
        n += len(idx)
    return tot / max(n, 1)


def check_store(store) -> None:
    """Refuse an ensemble too small to split (fewer than 3 members)."""
    if store.n_members < 3:
        raise DataError(f"{store.path}: {store.n_members} members are too few to train and validate a surrogate")
