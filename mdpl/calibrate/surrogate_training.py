"""Fit a surrogate to a perturbed-parameter ensemble (the fitted one: :mod:`mdpl.calibrate.trained_surrogate`).

:func:`train_surrogate` splits each site's members into training,
validation (early stopping) and test (fidelity report) parameter sets,
computes normalisation statistics on the training part only (forcing per
feature over the training sites' days, static attributes over sites, targets
per flux over training members and days), and fits the network with AdamW, a
cosine learning-rate decay and gradient clipping. Batches hold members of one
site, so the multi-task model encodes that site's forcing once per batch.

It returns a :class:`~mdpl.calibrate.trained_surrogate.TrainedSurrogate`:
the network with its statistics, parameter space and training record.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict

import numpy as np
import torch
from tqdm.auto import tqdm

from mdpl.calibrate.trained_surrogate import Normalisation, TrainedSurrogate
from mdpl.errors import ConfigError, DataError, ModelError
from mdpl.models.surrogate import build_surrogate

#: a statistic's standard deviation below this is taken as 1 (a constant input is centred, not scaled up)
_STD_FLOOR = 1e-6
#: the warm-up lasts 1/20 (5 %) of the optimiser steps
WARMUP_STEPS_DIVISOR = 20
#: the cosine schedule ends at this fraction of the learning rate
LR_FLOOR = 0.05
#: probability that a training window starts on the record's first day (the state's spin-up is learnt too)
P_WINDOW_AT_START = 0.25


def _mean_std(x: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring mean and standard deviation along ``axis`` (a tiny or undefined std becomes 1)."""
    m = np.nanmean(x, axis=axis)
    s = np.nanstd(x, axis=axis)
    s = np.where(np.isfinite(s) & (s > _STD_FLOOR), s, 1.0)
    return np.nan_to_num(m).astype(np.float64), s.astype(np.float64)


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
    """AdamW with a linear warm-up over the first 5 % of steps (:data:`WARMUP_STEPS_DIVISOR`) and a cosine decay
    to 5 % of the learning rate (:data:`LR_FLOOR`)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = max(1, n_steps // WARMUP_STEPS_DIVISOR)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm)
        * (LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * min(i, n_steps) / n_steps)))
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
            at_start = length == t_i or self.rng.random() < P_WINDOW_AT_START
            s0 = 0 if at_start else int(self.rng.integers(0, t_i - length + 1))
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
