"""Surrogates of the land model: daily forcing + parameters + site attributes -> daily fluxes.

Two architectures share one forward signature, so training, prediction and
calibration code never needs to know which one it holds::

    forward(forcing_norm (B, T, F), doy (B, T), params_unit (B, P), static_norm (B, S))
        -> (B, T, n_tasks)   # normalised target units

``forcing_norm`` may also have G < B rows (G sites, B/G parameter sets each,
site-major; G = 1 for one site): the multi-task model then runs its forcing
encoder once per site and shares it, which is what makes ensemble-sized
training cheap on a CPU. ``doy`` has 1 or G rows, ``static_norm`` 1, G or B.

- :class:`SingleTaskSurrogate` -- the dPL baseline (Tsai et al. 2021 style):
  one LSTM per flux whose input at every day is the forcing, the day-of-year
  encoding, the parameters and the static attributes, concatenated.
- :class:`MultiTaskSurrogate` -- MdPL (MMoE / PLE): a shared LSTM encoder of
  the dynamic forcing plus a sin/cos day-of-year embedding; static inputs
  (parameters in the unit cube, site attributes) kept apart and fused through
  their own projection: FiLM on the encoded sequence and the initial state of
  a small parameter-conditioned state LSTM (the land model's stores depend on
  the parameters); ``n_experts`` shared experts (plus optional task-specific
  experts, PLE), a softmax gate per task and one tower per flux.

Torch modules only: no I/O, no normalisation statistics (those live with the
trained surrogate, :mod:`mdpl.calibrate.surrogate_training`).
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from mdpl.errors import ConfigError

KINDS = ("multitask", "singletask")


def doy_encoding(doy: torch.Tensor) -> torch.Tensor:
    """Day of year (B, T) -> (B, T, 2) sin/cos on the annual circle (365.25 days)."""
    ang = 2.0 * math.pi * (doy.to(torch.float32) - 1.0) / 365.25
    return torch.stack([torch.sin(ang), torch.cos(ang)], dim=-1)


def _mlp(n_in: int, n_hidden: int, n_out: int, depth: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = n_in
    for _ in range(depth - 1):
        layers += [nn.Linear(d, n_hidden), nn.GELU()]
        d = n_hidden
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


def _check_inputs(forcing, doy, params, static, n_forcing, n_params, n_static):
    """Validate shapes; returns (B, G): B parameter sets in G site-major groups sharing one forcing row."""
    if forcing.ndim != 3 or forcing.shape[-1] != n_forcing:
        raise ValueError(f"forcing must be (B, T, {n_forcing}), got {tuple(forcing.shape)}")
    if params.ndim != 2 or params.shape[-1] != n_params:
        raise ValueError(f"params must be (B, {n_params}), got {tuple(params.shape)}")
    if static.ndim != 2 or static.shape[-1] != n_static:
        raise ValueError(f"static must be (B, {n_static}), got {tuple(static.shape)}")
    b, g = params.shape[0], forcing.shape[0]
    if b % g or doy.shape[0] not in (1, g) or static.shape[0] not in (1, g, b):
        raise ValueError(
            f"batch sizes disagree: forcing {g}, doy {doy.shape[0]}, params {b}, static {static.shape[0]} "
            f"(forcing rows must divide the parameter rows; doy and static rows must be 1, {g} or {b})"
        )
    if doy.shape[-1] != forcing.shape[1]:
        raise ValueError(f"doy has {doy.shape[-1]} days, forcing {forcing.shape[1]}")
    return b, g


def _per_row(x: torch.Tensor, b: int) -> torch.Tensor:
    """Repeat a (1 or G, ...) tensor to B rows, site-major (G groups of B/G rows)."""
    return x.expand(b, *x.shape[1:]) if x.shape[0] == 1 else x.repeat_interleave(b // x.shape[0], dim=0)


class SingleTaskSurrogate(nn.Module):
    """dPL baseline: one independent LSTM + linear head per flux; all inputs concatenated per day."""

    kind = "singletask"

    def __init__(self, n_forcing: int, n_params: int, n_static: int, tasks, *, hidden_size: int = 64):
        super().__init__()
        self.n_forcing, self.n_params, self.n_static = int(n_forcing), int(n_params), int(n_static)
        self.tasks = list(tasks)
        n_in = self.n_forcing + 2 + self.n_params + self.n_static
        self.lstms = nn.ModuleList([nn.LSTM(n_in, hidden_size, batch_first=True) for _ in self.tasks])
        self.heads = nn.ModuleList([nn.Linear(hidden_size, 1) for _ in self.tasks])

    def forward(self, forcing_norm, doy, params_unit, static_norm) -> torch.Tensor:
        b, _ = _check_inputs(forcing_norm, doy, params_unit, static_norm, self.n_forcing, self.n_params, self.n_static)
        t = forcing_norm.shape[1]
        x = torch.cat(
            [
                _per_row(forcing_norm, b),
                _per_row(doy_encoding(doy), b),
                (2.0 * params_unit - 1.0)[:, None, :].expand(b, t, -1),
                _per_row(static_norm, b)[:, None, :].expand(b, t, -1),
            ],
            dim=-1,
        )
        outs = [head(lstm(x)[0]) for lstm, head in zip(self.lstms, self.heads)]
        return torch.cat(outs, dim=-1)


class MultiTaskSurrogate(nn.Module):
    """MdPL surrogate: shared forcing encoder, static fusion by FiLM + initial state, MMoE/PLE heads.

    Dynamic path (once per site): forcing + sin/cos day of year -> linear ->
    LSTM encoder. Static path (once per parameter set): parameters (in
    [-1, 1]) and site attributes -> MLP -> context ``z``. Fusion: ``z``
    FiLM-modulates the encoding fed to a small state LSTM (``state_size``,
    0 disables) whose initial state is also projected from ``z`` -- the land
    model's water and heat stores evolve differently for each parameter set
    -- and FiLM-modulates and shifts the first layer of every expert, whose
    daily input is the encoding, the day's raw inputs and the state.
    ``n_experts`` experts are shared by all tasks; ``task_experts`` > 0 adds
    that many private experts per task (PLE, one extraction level). Each
    task's softmax gate (from the same three sources) mixes the experts it
    may use, and its own tower maps the mixture to the flux.

    The first expert layer is split by source (site part computed once per
    site, static part once per parameter set), which is algebraically a
    linear layer on the concatenation but costs a fraction on a CPU.
    """

    kind = "multitask"

    def __init__(
        self,
        n_forcing: int,
        n_params: int,
        n_static: int,
        tasks,
        *,
        hidden_size: int = 32,
        n_experts: int = 2,
        task_experts: int = 1,
        expert_size: int | None = None,
        state_size: int = 16,
    ):
        super().__init__()
        self.n_forcing, self.n_params, self.n_static = int(n_forcing), int(n_params), int(n_static)
        self.tasks = list(tasks)
        h = int(hidden_size)
        e = int(expert_size or hidden_size)
        self.state_size = int(state_size)
        self.n_shared, self.n_private = int(n_experts), int(task_experts)
        n_tasks = len(self.tasks)
        if self.n_shared + self.n_private < 1:
            raise ValueError("a multi-task surrogate needs at least one expert")
        self.n_total = self.n_shared + n_tasks * self.n_private
        self.n_gate = self.n_shared + self.n_private
        self.expert_size = e
        n_dyn = self.n_forcing + 2
        # dynamic path
        self.input_proj = nn.Linear(n_dyn, h)
        self.encoder = nn.LSTM(h, h, batch_first=True)
        # static path
        self.static_proj = _mlp(self.n_params + self.n_static, h, h)
        if self.state_size > 0:
            self.state_film = nn.Linear(h, 2 * h)
            self.state_init = nn.Linear(h, 2 * self.state_size)
            self.state_lstm = nn.LSTM(h, self.state_size, batch_first=True)
            nn.init.zeros_(self.state_film.weight)
            nn.init.zeros_(self.state_film.bias)
        # experts: first layer split by source, second layer grouped
        self.exp_site = nn.Linear(h + n_dyn, self.n_total * e)
        self.exp_static = nn.Linear(h, self.n_total * e)
        self.exp_film = nn.Linear(h, self.n_total * e)
        nn.init.zeros_(self.exp_film.weight)
        nn.init.zeros_(self.exp_film.bias)
        self.exp_w2 = nn.Parameter(torch.randn(self.n_total, e, e) / math.sqrt(e))
        self.exp_b2 = nn.Parameter(torch.zeros(self.n_total, e))
        # gates, one softmax per task over its shared + private experts
        self.gate_site = nn.Linear(h + n_dyn, n_tasks * self.n_gate)
        self.gate_static = nn.Linear(h, n_tasks * self.n_gate, bias=False)
        if self.state_size > 0:
            self.exp_state = nn.Linear(self.state_size, self.n_total * e, bias=False)
            self.gate_state = nn.Linear(self.state_size, n_tasks * self.n_gate, bias=False)
        self.towers = nn.ModuleList([_mlp(e, e, 1) for _ in self.tasks])

    def forward(self, forcing_norm, doy, params_unit, static_norm) -> torch.Tensor:
        b, g = _check_inputs(forcing_norm, doy, params_unit, static_norm, self.n_forcing, self.n_params, self.n_static)
        t = forcing_norm.shape[1]
        dyn = torch.cat([forcing_norm, _per_row(doy_encoding(doy), g)], dim=-1)  # (G, T, F + 2)
        enc, _ = self.encoder(torch.tanh(self.input_proj(dyn)))  # (G, T, H): once per site
        site_in = torch.cat([enc, dyn], dim=-1)
        z = self.static_proj(torch.cat([2.0 * params_unit - 1.0, _per_row(static_norm, b)], dim=-1))  # (B, H)
        pre = _per_row(self.exp_site(site_in), b) * (1.0 + self.exp_film(z)[:, None, :]) + self.exp_static(z)[:, None, :]
        gate_logits = _per_row(self.gate_site(site_in), b) + self.gate_static(z)[:, None, :]
        if self.state_size > 0:
            gamma, beta = self.state_film(z).chunk(2, dim=-1)
            mod = _per_row(enc, b) * (1.0 + gamma[:, None, :]) + beta[:, None, :]
            h0, c0 = torch.tanh(self.state_init(z)).chunk(2, dim=-1)
            state, _ = self.state_lstm(mod, (h0[None].contiguous(), c0[None].contiguous()))  # (B, T, S)
            pre = pre + self.exp_state(state)
            gate_logits = gate_logits + self.gate_state(state)
        hid = nn.functional.gelu(pre).view(b, t, self.n_total, self.expert_size)
        experts = torch.einsum("btne,nef->btnf", hid, self.exp_w2) + self.exp_b2  # (B, T, n_total, E)
        weights = torch.softmax(gate_logits.view(b, t, len(self.tasks), self.n_gate), dim=-1)
        outs = []
        for k, tower in enumerate(self.towers):
            w = weights[:, :, k, :, None]
            mix = (w[:, :, : self.n_shared] * experts[:, :, : self.n_shared]).sum(dim=2)
            if self.n_private:
                j = self.n_shared + k * self.n_private
                mix = mix + (w[:, :, self.n_shared :] * experts[:, :, j : j + self.n_private]).sum(dim=2)
            outs.append(tower(mix))
        return torch.cat(outs, dim=-1)


_REGISTRY: dict[str, type[nn.Module]] = {"multitask": MultiTaskSurrogate, "singletask": SingleTaskSurrogate}


def hyper_parameters(kind: str) -> tuple[str, ...]:
    """The hyper-parameters a surrogate of ``kind`` accepts (keyword arguments of its constructor)."""
    sig = inspect.signature(_REGISTRY[kind].__init__)
    return tuple(n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)


def build_surrogate(kind: str, *, n_forcing: int, n_params: int, n_static: int, tasks, **hyper) -> nn.Module:
    """A surrogate of ``kind`` ('multitask' or 'singletask').

    A hyper-parameter that ``kind`` does not take (a misspelt name, or one of
    the other kind's) is a :class:`~mdpl.errors.ConfigError` naming it, never
    silently dropped.
    """
    if kind not in _REGISTRY:
        raise ValueError(f"unknown surrogate kind {kind!r}; expected one of {', '.join(_REGISTRY)}")
    accepted = hyper_parameters(kind)
    unknown = sorted(set(hyper) - set(accepted))
    if unknown:
        raise ConfigError(f"{kind} surrogate: unknown hyper-parameter(s) {', '.join(unknown)} "
                          f"(it takes {', '.join(accepted)})")
    return _REGISTRY[kind](n_forcing, n_params, n_static, tasks, **hyper)
