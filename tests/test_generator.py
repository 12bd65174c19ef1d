"""The parameter generator: never leaves its bounds, starts at the prior, shares within PFT groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdpl.models.generator import ParameterGenerator

LOWER = np.array([10.0, 4.0, 0.001, 0.3])
UPPER = np.array([150.0, 16.0, 0.08, 3.0])
LOG = np.array([False, False, True, True])


def _gen(mode="all", n_inputs=5, seed=0):
    torch.manual_seed(seed)
    g = ParameterGenerator(n_inputs, LOWER, UPPER, log=LOG, mode=mode, hidden=16)
    for p in g.parameters():  # move off the zero initialisation so the network actually acts
        torch.nn.init.normal_(p, std=3.0)
    return g


@pytest.mark.parametrize(
    "x",
    [
        torch.full((4, 5), 1e30),
        torch.full((4, 5), -1e30),
        torch.tensor([[np.inf, -np.inf, np.nan, 1e38, -1e38]] * 4, dtype=torch.float32),
        torch.randn(4, 5) * 1e6,
    ],
)
def test_generator_never_leaves_bounds_on_adversarial_inputs(x):
    g = _gen()
    prior = torch.as_tensor(np.stack([UPPER, LOWER, UPPER, LOWER]), dtype=torch.float32)  # priors on the bounds
    theta = g(x, prior).detach().numpy()
    assert np.all(np.isfinite(theta))
    assert np.all(theta >= LOWER.astype(np.float32)) and np.all(theta <= UPPER.astype(np.float32))


def test_generator_bounds_hold_after_adversarial_weights():
    g = _gen()
    with torch.no_grad():
        g.net[-1].bias.fill_(1e6)
    theta = g(torch.randn(3, 5)).detach().numpy()
    np.testing.assert_allclose(theta, np.tile(UPPER, (3, 1)), rtol=1e-5)
    with torch.no_grad():
        g.net[-1].bias.fill_(-1e6)
    theta = g(torch.randn(3, 5)).detach().numpy()
    np.testing.assert_allclose(theta, np.tile(LOWER, (3, 1)), rtol=1e-5)


def test_untrained_generator_returns_the_prior():
    g = ParameterGenerator(5, LOWER, UPPER, log=LOG, mode="all")
    prior = np.array([[50.0, 9.0, 0.01, 1.0], [80.0, 7.0, 0.02, 0.6]])
    theta = g(torch.randn(2, 5), torch.as_tensor(prior, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(theta, prior, rtol=1e-4)


def test_log_parameters_map_geometrically():
    g = ParameterGenerator(1, LOWER, UPPER, log=LOG)
    mid = g.from_unit(torch.full((1, 4), 0.5)).numpy()[0]
    np.testing.assert_allclose(mid[:2], (LOWER[:2] + UPPER[:2]) / 2, rtol=1e-5)
    np.testing.assert_allclose(mid[2:], np.sqrt(LOWER[2:] * UPPER[2:]), rtol=1e-5)
    np.testing.assert_allclose(g.to_unit(torch.as_tensor(mid)).numpy(), 0.5, atol=1e-5)


def test_pft_mode_shares_one_set_per_group_and_site_mode_does_not():
    x = torch.randn(5, 5)
    groups = [0, 1, 0, 2, 1]
    theta = _gen("pft")(x, groups=groups).detach().numpy()
    np.testing.assert_allclose(theta[0], theta[2])
    np.testing.assert_allclose(theta[1], theta[4])
    assert not np.allclose(theta[0], theta[1])
    theta_site = _gen("all")(x).detach().numpy()
    assert not np.allclose(theta_site[0], theta_site[2])
    with pytest.raises(ValueError, match="group"):
        _gen("pft")(x)


def test_gradients_reach_the_network_weights():
    g = _gen()
    theta = g(torch.randn(3, 5))
    theta.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in g.parameters())
    assert g.net[0].weight.grad.abs().sum() > 0


def test_bad_bounds_and_mode_are_rejected():
    with pytest.raises(ValueError, match="upper > lower"):
        ParameterGenerator(2, [1.0, 2.0], [0.5, 3.0])
    with pytest.raises(ValueError, match="mode"):
        ParameterGenerator(2, [0.0], [1.0], mode="everything")


def test_trust_radius_keeps_parameters_near_the_prior_and_starts_at_it():
    prior = torch.as_tensor(np.array([[50.0, 9.0, 0.01, 1.0], [149.0, 4.1, 0.02, 0.6]]), dtype=torch.float32)
    g = ParameterGenerator(5, LOWER, UPPER, log=LOG, mode="all", trust_radius=0.2)
    np.testing.assert_allclose(g(torch.randn(2, 5), prior).detach().numpy(), prior.numpy(), rtol=1e-4)
    u0 = g.to_unit(prior)
    for fill in (1e6, -1e6):  # as far as the network can push, either way
        with torch.no_grad():
            g.net[-1].bias.fill_(fill)
        u = g.forward_unit(torch.randn(2, 5), prior)
        assert torch.all((u - u0).abs() <= 0.2 + 1e-5) and torch.all((u >= 0) & (u <= 1))
        assert torch.all(((u - u0).abs() >= 0.2 - 1e-4) | (u <= 1e-6) | (u >= 1 - 1e-6))  # reaches the edge
    with pytest.raises(ValueError, match="trust_radius"):
        ParameterGenerator(5, LOWER, UPPER, trust_radius=1.5)
