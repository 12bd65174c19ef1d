"""The one training loop behind MdPL, dPL and direct calibration.

It trains parameter generator(s) so that a differentiable simulator, given
the generated parameters, matches observed daily fluxes (the multi-task loss
of :mod:`mdpl.calibrate.targets`). The simulator is what differs between the
methods: a frozen multi-task surrogate (MdPL), frozen single-task surrogates
(dPL), or the land model itself (direct).

Sharing follows :mod:`mdpl.models.generator`: in ``'site'`` mode every site
has its own generator (trained side by side, independent because Adam's
updates are per weight and the loss is a sum over sites); in ``'pft'`` and
``'all'`` mode one generator serves every site.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from mdpl.calibrate.targets import SiteTargets, task_terms, term_weights
from mdpl.models.generator import ParameterGenerator

#: simulate(params (n_sites, P) physical) -> one dict task -> (days,) tensor per site
Simulator = Callable[[torch.Tensor], Sequence[dict[str, torch.Tensor]]]


@dataclass
class GeneratorFit:
    """Generators after training, the parameters they give, and the loss history."""

    generators: list[ParameterGenerator]
    params: np.ndarray  # (n_sites, P) physical, from the best epoch
    history: list[dict] = field(default_factory=list)  # one per epoch: loss + per-task terms
    best_epoch: int = -1
    n_simulations: int = 0  # simulator calls x sites
    wall_s: float = 0.0
    #: epoch -> (n_sites, P) physical parameters at that epoch (the checkpoints asked for, and the best)
    candidates: dict[int, np.ndarray] = field(default_factory=dict)


def build_generators(n_sites: int, inputs: np.ndarray, space, *, mode: str, hidden: int = 32,
                     trust_radius: float = 0.0) -> list[ParameterGenerator]:
    """One generator per site (``'site'``) or one shared (``'pft'``, ``'all'``) onto ``space``'s bounds.

    Inputs are normalised with their mean and spread over the sites given.
    """
    x = np.asarray(inputs, dtype=float)
    mean = np.nanmean(x, axis=0) if x.size else np.zeros(x.shape[1])
    std = np.nanstd(x, axis=0) if x.size else np.ones(x.shape[1])
    def make() -> ParameterGenerator:
        return ParameterGenerator.from_space(space, x.shape[1], hidden=hidden, mode=mode, input_mean=mean, input_std=std,
                                             trust_radius=trust_radius)

    return [make() for _ in range(n_sites)] if mode == "site" else [make()]


def generate(
    generators: list[ParameterGenerator], inputs: torch.Tensor, priors: torch.Tensor, groups: torch.Tensor | None,
    free: torch.Tensor | None = None,
) -> torch.Tensor:
    """Physical parameters (n_sites, P) from the generator(s); ``free`` (n_sites, P) False: held at the prior."""
    if len(generators) == 1 and generators[0].mode != "site":
        return generators[0](inputs, priors, groups, free)
    if len(generators) == 1:
        return generators[0](inputs, priors, None, free)
    return torch.cat([g(inputs[i : i + 1], priors[i : i + 1], None, None if free is None else free[i : i + 1])
                      for i, g in enumerate(generators)], dim=0)


def checkpoint_epochs(epochs: int, n: int) -> list[int]:
    """``n`` epochs spread evenly over a run of ``epochs`` (the last one included): candidate checkpoints."""
    if n <= 0 or epochs <= 0:
        return []
    return sorted({max(0, int(round(epochs * (k + 1) / n)) - 1) for k in range(n)})


def train_generators(
    generators: list[ParameterGenerator],
    inputs: np.ndarray,
    priors: np.ndarray,
    simulate: Simulator,
    targets: Sequence[SiteTargets],
    weights: dict[str, float],
    *,
    epochs: int,
    learning_rate: float,
    groups: Sequence[int] | None = None,
    progress: bool = True,
    desc: str = "calibrate",
    patience: int | None = None,
    prior_weight: float = 0.0,
    no_worse_weight: float = 0.0,
    free: np.ndarray | None = None,
    checkpoints: Sequence[int] = (),
) -> GeneratorFit:
    """Adam on the generators' weights, full batch over sites, keeping the best epoch.

    ``inputs`` (n_sites, F) and ``priors`` (n_sites, P, physical) are fixed;
    every epoch generates parameters, simulates, and steps on the summed
    multi-task loss. ``patience`` stops after that many epochs without a new
    best (None: run all epochs). ``prior_weight`` adds that weight times the
    mean squared distance, in the unit cube, between the generated
    parameters and the priors: it keeps parameters that the data do not
    constrain near their PFT defaults, where a surrogate is best sampled.
    ``free`` (n_sites, P) bool: parameters marked False stay at their prior.
    ``checkpoints``: epochs whose parameters are kept as candidates (for a
    land-model check that chooses among them, beside the surrogate's best).
    """
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    pri = torch.as_tensor(np.asarray(priors, dtype=np.float32))
    grp = None if groups is None else torch.as_tensor(np.asarray(groups, dtype=np.int64))
    fr = None if free is None else torch.as_tensor(np.asarray(free, dtype=bool))
    keep_at = set(int(e) for e in checkpoints)
    candidates: dict[int, np.ndarray] = {}
    params_all = [p for g in generators for p in g.parameters()]
    opt = torch.optim.Adam(params_all, lr=learning_rate)
    history: list[dict] = []
    best = (math.inf, -1, None)
    n_sims = 0
    t0 = time.perf_counter()
    bar = tqdm(range(max(int(epochs), 0)), desc=desc, disable=not progress, leave=False)
    with torch.no_grad():
        theta0 = generate(generators, x, pri, grp, fr)
        u_prior = generators[0].to_unit(pri.to(theta0)).clamp(0.0, 1.0)
        baseline = ([{t: v.detach() for t, v in task_terms(sim, tgt, weights).items()}
                     for sim, tgt in zip(simulate(theta0), targets)] if no_worse_weight else None)
    best = (math.inf, -1, theta0.numpy().copy())
    best_states = [copy.deepcopy(g.state_dict()) for g in generators]
    for epoch in bar:
        opt.zero_grad()
        theta = generate(generators, x, pri, grp, fr)
        if epoch in keep_at:
            candidates[epoch] = theta.detach().numpy().copy()
        sims = simulate(theta)
        n_sims += len(targets)
        loss = None
        parts: dict[str, float] = {}
        for i, (sim, tgt) in enumerate(zip(sims, targets)):
            terms = task_terms(sim, tgt, weights)
            tw = term_weights(tgt, weights)
            l_site = sum(tw[t] * v for t, v in terms.items())
            if baseline is not None:
                worse = sum(tw[t] * torch.relu(v - baseline[i][t]) for t, v in terms.items())
                parts["no_worse"] = parts.get("no_worse", 0.0) + float(worse.detach()) / len(targets)
                l_site = l_site + no_worse_weight * worse
            loss = l_site if loss is None else loss + l_site
            for k, v in terms.items():
                parts[k] = parts.get(k, 0.0) + float(v.detach()) / len(targets)
        loss = loss / len(targets)
        if prior_weight:
            pen = prior_weight * ((generators[0].to_unit(theta) - u_prior) ** 2).mean()
            parts["prior"] = float(pen.detach())
            loss = loss + pen
        value = float(loss.detach())
        history.append({"epoch": epoch, "loss": value, **{f"loss_{k}": v for k, v in parts.items()}})
        if math.isfinite(value) and value < best[0]:
            best = (value, epoch, theta.detach().numpy().copy())
            best_states = [copy.deepcopy(g.state_dict()) for g in generators]
        if patience is not None and epoch - best[1] > patience:
            break
        if not math.isfinite(value):
            break
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{value:.4f}")
    bar.close()
    # the loss at epoch e is that of the parameters *before* step e: restore the weights of the best epoch
    out = [copy.deepcopy(g) for g in generators]
    for g, state in zip(out, best_states):
        g.load_state_dict(state)
    if best[1] >= 0:
        candidates[int(best[1])] = best[2]
    return GeneratorFit(
        generators=out,
        params=best[2],
        history=history,
        best_epoch=best[1],
        n_simulations=n_sims,
        wall_s=time.perf_counter() - t0,
        candidates=dict(sorted(candidates.items())),
    )
