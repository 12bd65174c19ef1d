"""Surrogate networks: shapes, shared-encoder grouping, causality, gradients w.r.t. the parameters."""

from __future__ import annotations

import pytest
import torch

from mdpl.errors import ConfigError
from mdpl.models.surrogate import KINDS, MultiTaskSurrogate, SingleTaskSurrogate, build_surrogate, doy_encoding

F, P, S, T = 5, 4, 3, 40
TASKS = ["Qle", "Qh", "NEE"]


def _net(kind, **kw):
    torch.manual_seed(0)
    if kind == "multitask":
        kw.setdefault("state_size", 8)
    return build_surrogate(kind, n_forcing=F, n_params=P, n_static=S, tasks=TASKS, hidden_size=16, **kw)


def _inputs(g=2, k=3):
    torch.manual_seed(1)
    forcing = torch.randn(g, T, F)
    doy = torch.arange(1, T + 1).float()[None].expand(g, T)
    params = torch.rand(g * k, P)
    static = torch.randn(g, S)
    return forcing, doy, params, static


@pytest.mark.parametrize("kind", KINDS)
def test_registry_builds_the_asked_network_with_one_head_per_task(kind):
    """The hyper-parameters reach the layers, and each flux has its own output path (change one, only it moves)."""
    net = _net(kind)
    assert isinstance(net, MultiTaskSurrogate if kind == "multitask" else SingleTaskSurrogate)
    if kind == "multitask":
        assert net.encoder.hidden_size == 16 and net.state_lstm.hidden_size == 8
        heads = net.towers
    else:
        assert [m.hidden_size for m in net.lstms] == [16] * len(TASKS)
        heads = net.heads
    forcing, doy, params, static = _inputs()
    with torch.no_grad():
        out = net(forcing, doy, params, static)
        assert out.shape == (6, T, len(TASKS)) and torch.isfinite(out).all()
        for p in heads[1].parameters():
            p.add_(0.5)
        moved = net(forcing, doy, params, static)
    torch.testing.assert_close(moved[..., [0, 2]], out[..., [0, 2]])
    assert (moved[..., 1] - out[..., 1]).abs().min() > 1e-3


@pytest.mark.parametrize("kind, bad", [("multitask", "hiden_size"), ("singletask", "n_experts")])
def test_unknown_hyper_parameter_is_an_error_naming_it(kind, bad):
    with pytest.raises(ConfigError, match=f"{kind} surrogate: unknown hyper-parameter.*{bad}.*takes hidden_size"):
        _net(kind, **{bad: 3})


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown surrogate kind"):
        build_surrogate("lstm3", n_forcing=F, n_params=P, n_static=S, tasks=TASKS)


@pytest.mark.parametrize("kind", KINDS)
def test_grouped_forcing_equals_repeated_rows(kind):
    """G sites x k parameter sets with shared forcing == the same rows spelled out one by one."""
    net = _net(kind)
    forcing, doy, params, static = _inputs(g=2, k=3)
    grouped = net(forcing, doy, params, static)
    rows = net(forcing.repeat_interleave(3, 0), doy.repeat_interleave(3, 0), params, static.repeat_interleave(3, 0))
    torch.testing.assert_close(grouped, rows, rtol=1e-5, atol=1e-5)
    one_site = net(forcing[:1], doy[:1], params[:3], static[:1])
    torch.testing.assert_close(one_site, grouped[:3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_causal_in_time(kind):
    """Changing the forcing on day 30 leaves days before it untouched (padding at the end is harmless)."""
    net = _net(kind)
    forcing, doy, params, static = _inputs(g=1, k=2)
    a = net(forcing, doy, params, static)
    f2 = forcing.clone()
    f2[:, 30:] += 5.0
    b = net(f2, doy, params, static)
    torch.testing.assert_close(a[:, :30], b[:, :30])
    assert (a[:, 30:] - b[:, 30:]).abs().max() > 1e-4


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_wrt_parameters(kind):
    net = _net(kind)
    forcing, doy, params, static = _inputs(g=1, k=4)
    params = params.clone().requires_grad_(True)
    for p in net.parameters():
        p.requires_grad_(False)  # frozen, as in calibration
    out = net(forcing, doy, params, static)
    out[..., 0].sum().backward()
    assert params.grad is not None and torch.isfinite(params.grad).all()
    assert (params.grad.abs().sum(dim=1) > 0).all()
    # row independence: each output row depends only on its own parameter set
    params.grad = None
    net(forcing, doy, params, static)[1].sum().backward()
    assert params.grad[0].abs().max() == 0 and params.grad[1].abs().max() > 0


def test_parameters_change_the_output():
    net = _net("multitask")
    for p in net.parameters():  # FiLM layers start at zero; perturb so every path is live
        torch.nn.init.normal_(p, std=0.2)
    forcing, doy, _, static = _inputs(g=1)
    lo = net(forcing, doy, torch.zeros(1, P), static)
    hi = net(forcing, doy, torch.ones(1, P), static)
    assert (lo - hi).abs().mean() > 1e-3


def test_plain_mmoe_and_bad_inputs():
    net = _net("multitask", task_experts=0, n_experts=3)
    forcing, doy, params, static = _inputs(g=1, k=2)
    assert net(forcing, doy, params, static).shape == (2, T, 3)
    with pytest.raises(ValueError, match="forcing must be"):
        net(forcing[..., :2], doy, params, static)
    with pytest.raises(ValueError, match="batch sizes disagree"):
        net(torch.randn(2, T, F), doy, torch.rand(3, P), static)


def test_doy_encoding_is_periodic():
    e = doy_encoding(torch.tensor([[1.0, 366.25]]))
    torch.testing.assert_close(e[0, 0], e[0, 1], atol=1e-5, rtol=0)
    assert e.shape == (1, 2, 2)
