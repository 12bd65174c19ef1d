"""What the book's design-twin section shows: the committed 20-site tables, else a quick 4-site run.

:func:`design_result` reads :data:`RESULTS_DIR` first (small tables of one
20-site run, committed under ``benchmarks/twin20``); without them it runs (or
reuses) a quick 4-site version sized by :func:`quick_config`.
"""

from __future__ import annotations

from pathlib import Path

from mdpl.twin_design.experiment import DesignResult, design_experiment, load_design
from mdpl.twin_design.sites import design_sites

#: where the committed result of a 20-site run lives (small tables only; the study directory stays under runs/)
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "twin20"
#: the quick run: towers per group, its PFT groups, years of forcing and the forcing's time step (s)
QUICK_PER_GROUP, QUICK_GROUPS, QUICK_YEARS, QUICK_STEP_S = 2, ("evergreen_forest", "grassland"), 0.5, 3600


def quick_config():
    """A small configuration for the book's fallback run (4 towers, a few minutes on a CPU): no spin-up, a small
    ensemble and surrogate, MdPL only."""
    from mdpl.config import Config

    cfg = Config(seed=0)
    cfg.lsm.spinup_max_years = 0
    cfg.ensemble.n_members = 24
    cfg.surrogate.epochs = 8
    cfg.calibration.sources = ["default", "mdpl"]
    cfg.calibration.quick_epochs = 80
    cfg.calibration.screen_samples = 32
    cfg.calibration.candidates = 2
    return cfg


def design_result(out_dir, *, results_dir=None, run_quick: bool = True, progress: bool = False) -> DesignResult | None:
    """The design twin result a page shows: the committed 20-site tables (``results_dir``, default
    :data:`RESULTS_DIR`) when present, else a quick 4-site run cached in ``out_dir`` (two towers of two PFT
    groups, half a year each, :func:`quick_config`), run now when ``run_quick`` and not there yet."""
    res = load_design(RESULTS_DIR if results_dir is None else results_dir)
    if res is not None:
        return res
    res = load_design(out_dir)
    if res is not None or not run_quick:
        return res
    datasets = design_sites(QUICK_PER_GROUP, groups=QUICK_GROUPS, years=QUICK_YEARS, time_step_s=QUICK_STEP_S)
    return design_experiment(quick_config(), out_dir, datasets=datasets, progress=progress)
