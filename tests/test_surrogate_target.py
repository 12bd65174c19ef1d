"""The fidelity target of issue 4, on the embedded land model (heavy: ``MDPL_FULL=1``).

Quick-mode ensemble of the five study sites (real files when present, else
their synthetic twins) over the calibration period, multi-task surrogate
trained with the quick-mode settings: daily R^2 >= 0.95 for Qle and Qh on
held-out parameter sets at the training sites.
"""

from __future__ import annotations

import pytest

from mdpl.calibrate.fidelity import fidelity_report
from mdpl.calibrate.surrogate_training import train_surrogate
from mdpl.config import load_config
from mdpl.data import study_sites
from mdpl.ensemble import run_ensemble
from mdpl.ils.model import EmbeddedLSM


@pytest.mark.full
def test_multitask_surrogate_meets_the_fidelity_target(tmp_path):
    cfg = load_config()
    sites, _ = study_sites(cfg)
    model = EmbeddedLSM(cfg.lsm, device="cpu")
    store = run_ensemble(sites, model, model.parameter_space, cfg.ensemble.n_members, tmp_path / "ens",
                         batch_size=cfg.ensemble.batch_size, seed=0, span=cfg.ensemble.span,
                         max_pad_days=cfg.ensemble.max_pad_days, progress=False)
    sur = train_surrogate(store, cfg.surrogate, kind="multitask", seed=0, progress=False)
    rep = fidelity_report(sur, store)
    pooled = rep[rep.site == "ALL"].set_index("flux")
    assert pooled.loc["Qle", "r2"] >= 0.95, rep
    assert pooled.loc["Qh", "r2"] >= 0.95, rep
