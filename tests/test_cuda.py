"""The CUDA path: the same land model, surrogate and study on a GPU as on the CPU.

Skipped where no GPU is present (CI has none); run on a lent GPU with
``pytest tests/test_cuda.py``. Each test compares against the CPU result, so a
device-placement bug (a tensor left on the CPU, a ``.numpy()`` on a CUDA
tensor) fails here with the place it happened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mdpl.config import load_config
from mdpl.data.synthetic import site_twin
from mdpl.ils import EmbeddedLSM
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")


@pytest.fixture(scope="module")
def sites():
    return [site_twin(c, years=6 / 365.25, start="2005-06-10") for c in ("DK-Fou", "ID-Pag")]


def test_land_model_on_cuda_matches_cpu_in_float64(sites):
    cfg = load_config(None).lsm
    cfg.dtype = "float64"
    p = np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))])
    cpu = EmbeddedLSM(cfg, device="cpu").simulate(sites, p, spinup=False)
    gpu = EmbeddedLSM(cfg, device="cuda").simulate(sites, p, spinup=False)
    assert gpu["Qle"].device.type == "cuda"
    for k in ("Qle", "Qh", "NEE", "energy_residual"):
        a, b = cpu[k], gpu[k].cpu()
        assert torch.isfinite(b).all(), k
        assert (a - b).abs().max() < 1e-6 * max(1.0, float(a.abs().max())), k


def test_land_model_gradients_on_cuda(sites):
    m = EmbeddedLSM(device="cuda")
    u = torch.full((1, SPACE.n), 0.4, device="cuda", requires_grad=True)
    p = SPACE.from_unit(u)
    out = m.simulate(sites[:1], p, daily=True, spinup=False)
    out["Qle"].mean().backward()
    assert u.grad is not None and torch.isfinite(u.grad).all() and (u.grad != 0).any()


def test_tiny_study_on_cuda_matches_cpu(tmp_path):
    """The whole pipeline on the GPU: same sites, same seed; metrics close to the CPU run's."""
    from mdpl.study import run_study

    cfg = load_config(Path(__file__).with_name("book_tiny.yaml"))
    cfg.calibration.sources = ["default", "mdpl", "dpl", "direct"]
    cfg.calibration.direct_quick_epochs = 1
    from mdpl.twin import hidden_truth, make_observations

    forcing = [site_twin(c, years=40 / 365.25, start="2005-05-01") for c in cfg.data.sites]
    model = EmbeddedLSM(cfg.lsm, device="cpu")
    truth = hidden_truth(model.parameter_space, len(forcing), seed=1)
    twins = make_observations(model, forcing, truth, seed=1)[0]
    res_cpu = run_study(cfg, tmp_path / "cpu", progress=False, device="cpu", datasets=twins)
    res_gpu = run_study(cfg, tmp_path / "gpu", progress=False, device="cuda", datasets=twins)
    a = res_cpu.records.set_index(["site", "flux", "period", "scale", "source"]).rmse.sort_index()
    b = res_gpu.records.set_index(["site", "flux", "period", "scale", "source"]).rmse.sort_index()
    assert a.index.equals(b.index)
    # the same records are defined (40 days: no complete month, so monthly scores are NaN on both)
    np.testing.assert_array_equal(np.isfinite(b.to_numpy()), np.isfinite(a.to_numpy()))
    daily_fluxes = ((b.index.get_level_values("scale") == "daily") & (b.index.get_level_values("period") == "train")
                    & b.index.get_level_values("flux").isin(["Qle", "Qh"]))
    assert np.isfinite(b[daily_fluxes].to_numpy()).all()
    default = a.index.get_level_values("source") == "default"
    # default parameters: the same land model run, so the same numbers up to float32 rounding
    np.testing.assert_allclose(b[default].to_numpy(), a[default].to_numpy(), rtol=1e-3, atol=1e-3)
