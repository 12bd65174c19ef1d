"""The compiled time step (``lsm.compile``): same answers as the eager step, chosen only where it pays, and a
clean fall-back to eager when compilation is impossible."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from mdpl.config import LsmConfig, config_from_dict
from mdpl.data.synthetic import site_twin
from mdpl.errors import ConfigError
from mdpl.ils import EmbeddedLSM
from mdpl.ils import model as model_module
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE


@pytest.fixture(scope="module")
def sites():
    return [site_twin(c, years=2 / 365.25, start="2005-06-10") for c in ("DK-Fou", "ZA-Kru")]


@pytest.fixture(scope="module")
def params():
    return np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.7))])


def _run(compile_mode, sites, params, **kw):
    m = EmbeddedLSM(LsmConfig(compile=compile_mode), device="cpu")
    with torch.no_grad():
        return m, m.simulate(sites, params, spinup=False, **kw)


def test_compiled_step_gives_the_eager_answer(sites, params):
    _, eager = _run("off", sites, params)
    m, comp = _run("on", sites, params)
    assert comp.diagnostics["compiled_step"] and m.compile_error is None
    assert eager.diagnostics["compiled_step"] is False
    for k in ("Qle", "Qh", "NEE", "SoilMoist", "Tsurf"):  # the residual itself is float32 rounding: checked below
        scale = max(1.0, float(eager[k].abs().max()))
        assert float((comp[k] - eager[k]).abs().max()) < 1e-4 * scale, k
    # closure holds in the compiled run as in the eager one (float32)
    assert float(comp["energy_residual"].abs().max()) < 0.01


def test_auto_compiles_long_runs_only():
    m = EmbeddedLSM(LsmConfig(compile="auto"), device="cpu")
    assert not m._compile_pays(48 * 30)  # a month of half-hours: compiling would cost more than it saves
    assert m._compile_pays(model_module.COMPILE_MIN_STEPS)
    assert not EmbeddedLSM(LsmConfig(compile="off"), device="cpu")._compile_pays(10**7)
    assert EmbeddedLSM(LsmConfig(compile="on"), device="cpu")._compile_pays(1)


def test_runs_with_gradients_use_the_eager_step(sites):
    m = EmbeddedLSM(LsmConfig(compile="on"), device="cpu")
    m._use_compiled = True
    with torch.no_grad():
        assert m._step_function() is not m._step
    assert m._step_function() == m._step  # grad mode: eager
    u = torch.full((1, SPACE.n), 0.4, requires_grad=True)
    out = m.simulate(sites[:1], SPACE.from_unit(u), daily=True, spinup=False)
    out["Qh"].mean().backward()
    assert torch.isfinite(u.grad).all() and (u.grad != 0).any()


def test_a_compiler_failure_falls_back_to_eager_with_one_warning(sites, params, monkeypatch):
    def broken_compile(fn, **kw):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler found\nlong traceback")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    _, eager = _run("off", sites, params)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m, out = _run("on", sites, params)
    msgs = [str(x.message) for x in w if "torch.compile" in str(x.message)]
    assert len(msgs) == 1 and "no C++ compiler found" in msgs[0] and "long traceback" not in msgs[0]
    assert m.compile_error.startswith("RuntimeError")
    torch.testing.assert_close(out["Qle"], eager["Qle"])
    with torch.no_grad():  # given up for good: later runs of this model go straight to eager
        assert m.simulate(sites, params, spinup=False).diagnostics["compiled_step"] is False


def test_bad_compile_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="lsm.compile"):
        config_from_dict({"lsm": {"compile": "yes"}})
    with pytest.raises(ConfigError, match="lsm.compile"):
        EmbeddedLSM(LsmConfig(compile="sometimes"), device="cpu")
