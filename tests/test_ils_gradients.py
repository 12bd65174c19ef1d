"""Gradients through the embedded model: every calibrated parameter moves daily Qle, Qh or NEE;
autograd agrees with finite differences (float64 gradcheck)."""

import numpy as np
import pytest
import torch

from mdpl.config import LsmConfig
from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE


@pytest.fixture(scope="module")
def summer():
    # early summer with showers; started from a dry root zone so stress, interception and
    # soil evaporation are all active
    return site_twin("DK-Fou", years=5 / 365.25, start="2005-06-02")


def test_every_parameter_has_a_finite_nonzero_gradient(summer):
    m = EmbeddedLSM(LsmConfig(checkpoint_days=False), device="cpu", dtype=torch.float64)
    p = torch.tensor(SPACE.from_unit(np.full(SPACE.n, 0.6)), requires_grad=True)
    assert summer["Rainf"].values.sum() > 0
    res = m.simulate(summer, p, daily=True, spinup=False, initial_theta=0.24)
    grads = {}
    for flux in ("Qle", "Qh", "NEE"):
        (g,) = torch.autograd.grad(res[flux].sum(), p, retain_graph=True)
        assert torch.isfinite(g).all(), flux
        grads[flux] = g
    g = torch.stack(list(grads.values()))  # (flux, parameter)
    for j, name in enumerate(SPACE.names):
        assert g[:, j].abs().max() > 1e-8, f"no gradient for {name}: {g[:, j].tolist()}"
    # signs that physics dictates: more carboxylation capacity -> lower NEE (more uptake)
    assert grads["NEE"][SPACE.index("vcmax25")] < 0
    assert grads["NEE"][SPACE.index("resp_base")] > 0
    assert grads["Qh"][SPACE.index("albedo_canopy")] < 0


def test_gradcheck_float64_short_run(summer):
    # gradcheck uses torch.autograd.grad, which the per-day (reentrant) checkpoints do not support
    m = EmbeddedLSM(LsmConfig(checkpoint_days=False), device="cpu", dtype=torch.float64)
    # six late-morning steps of two columns: sunlit, transpiring, canopy wet from a little dew
    start = int(np.flatnonzero(summer["SWdown"].values > 300)[0])
    ds = summer.isel(time=slice(start, start + 6))
    forcing = m.forcing(ds)
    base = torch.tensor(np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.4))]))
    scale = torch.tensor(SPACE.upper - SPACE.lower)

    def f(u):
        r = m.simulate(forcing, base + u * scale, spinup=False, initial_theta=0.22)
        return torch.stack([r["Qle"].mean(1), r["Qh"].mean(1), r["NEE"].mean(1)], 1)

    u = torch.zeros(2, SPACE.n, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(f, (u,), eps=1e-7, atol=1e-5, rtol=1e-4)


def test_daily_checkpointing_gives_the_same_gradients(summer):
    ds = summer.isel(time=slice(0, 96))
    grads = []
    for ck in (True, False):
        m = EmbeddedLSM(LsmConfig(checkpoint_days=ck), device="cpu", dtype=torch.float64)
        p = torch.tensor(SPACE.defaults("CRO"), requires_grad=True)
        r = m.simulate(ds, p, daily=True, spinup=False)
        (r["Qle"].sum() + r["Qh"].sum()).backward()
        grads.append(p.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-10, atol=1e-12)
