"""Science in the default run: a multi-task surrogate of the embedded land model, trained on a small ensemble.

One synthetic twin of DK-Fou (60 days, hourly steps), 48 Sobol parameter
sets of the embedded LSM (no spin-up), a small multi-task surrogate trained
for 80 epochs: on the held-out parameter sets its daily Qle and Qh must keep
a pooled R^2 of at least 0.85 and 0.9 (measured 0.91 and 0.94 on a shared,
loaded machine). The quick-mode target (R^2 >= 0.95 at the five study sites)
stays in ``test_surrogate_target.py`` (``make test-full``).

Seen to fail: the same network trained for 2 epochs scores below the floor
(``test_an_untrained_surrogate_is_below_the_floor``), so the floor measures
learning, not the seasonal cycle alone.
"""

from __future__ import annotations

import pytest

from mdpl.calibrate.fidelity import fidelity_report
from mdpl.calibrate.surrogate_training import train_surrogate
from mdpl.config import SurrogateConfig, load_config
from mdpl.data.synthetic import site_twin
from mdpl.ensemble import run_ensemble
from mdpl.ils.model import EmbeddedLSM

FLOOR = {"Qle": 0.85, "Qh": 0.9}


def _config(epochs: int) -> SurrogateConfig:
    return SurrogateConfig(epochs=epochs, hidden_size=16, state_size=8, window_days=0, batch_size=48,
                           learning_rate=3e-3, tasks=["Qle", "Qh"])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = load_config()
    cfg.lsm.spinup_max_years = 0
    cfg.lsm.compile = "off"
    site = site_twin("DK-Fou", years=60 / 365.25, seed=0, time_step_s=3600)
    model = EmbeddedLSM(cfg.lsm, device="cpu")
    return run_ensemble([site], model, model.parameter_space, 48, tmp_path_factory.mktemp("floor") / "ens",
                        batch_size=48, seed=0, progress=False)


def _pooled_r2(store, epochs: int) -> dict:
    sur = train_surrogate(store, _config(epochs), kind="multitask", seed=0, progress=False)
    rep = fidelity_report(sur, store)
    assert (rep.scope == "heldout_params").all()
    return rep[rep.site == "ALL"].set_index("flux")["r2"].to_dict()


def test_multitask_surrogate_meets_the_fidelity_floor(store):
    r2 = _pooled_r2(store, 80)
    for flux, floor in FLOOR.items():
        assert r2[flux] >= floor, f"{flux}: pooled daily R^2 {r2[flux]:.3f} on held-out parameter sets < {floor}"


def test_an_untrained_surrogate_is_below_the_floor(store):
    r2 = _pooled_r2(store, 2)
    assert any(r2[f] < FLOOR[f] for f in FLOOR), r2
