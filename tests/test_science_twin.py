"""Science in the default run: a short MdPL twin on the embedded land model must find the parameters we hid.

Two synthetic towers (DK-Fou cropland, ID-Pag tropical forest), 60 days from
June of hourly forcing each, no spin-up. The hidden truth is each site's PFT
defaults with two parameters the fluxes are sensitive to moved a quarter of
their range (the Ball-Berry stomatal slope and the canopy albedo, in opposite
directions at the two sites: :data:`MOVES`). "Observations" are the land model run with
the truth plus daily noise, and the whole study runs on them as if they were
tower data: a 48-member ensemble, a small multi-task surrogate, the Sobol
screen, the parameter generator (started at the defaults) and the land-model
check of its checkpoints (:func:`mdpl.twin.twin_experiment`). Against the
noise-free truth run:

- MdPL's daily Qle and Qh RMSE must fall well below the PFT defaults' at each
  site (by :data:`MIN_REDUCTION`);
- the canopy albedo, which nothing else can stand in for, must come back at
  both sites, within half the default's distance of the truth. The stomatal
  slope is not checked on its own: Vcmax25 sets the same Ball-Berry
  conductance (measured: it absorbs part of the move), so the two trade off
  on these fluxes and only their joint effect, the RMSE, is identified.

Seen to fail: the generator trained at a learning rate of 1e-9
(``GENERATOR_LR`` below) stays at the defaults, and both checks fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from mdpl.calibrate.inputs import default_priors
from mdpl.config import Config
from mdpl.data.features import site_features
from mdpl.data.synthetic import site_twin
from mdpl.ils.parameters import PARAMETER_SPACE
from mdpl.twin import twin_experiment

SITES = ("DK-Fou", "ID-Pag")
#: 60 days from June (northern summer: the fluxes see the vegetation's parameters), hourly steps
START, N_DAYS = "2005-06-01", 60
#: the hidden truth: site -> {parameter: move from the PFT default in the unit cube}
MOVES = {"DK-Fou": {"bb_slope": -0.25, "albedo_canopy": 0.25}, "ID-Pag": {"bb_slope": 0.25, "albedo_canopy": -0.25}}
#: the parameter generator's learning rate (the configuration's default); 1e-9 breaks the method on purpose
GENERATOR_LR = 1e-2
#: MdPL must cut each site's mean daily Qle/Qh RMSE against the truth by at least this fraction (measured
#: 0.82 at both on a shared, loaded machine)
MIN_REDUCTION = 0.5
#: recovered parameters: the ones nothing else stands in for, and how much of the default's error may remain
RECOVERED, MAX_ERROR_LEFT = ("albedo_canopy",), 0.5


def _config() -> Config:
    cfg = Config(seed=0, device="cpu")
    cfg.lsm.spinup_max_years = 0
    cfg.lsm.compile = "off"
    cfg.ensemble.n_members = 48
    cfg.ensemble.batch_size = 48
    cfg.surrogate.epochs = 80
    cfg.surrogate.hidden_size = 16
    cfg.surrogate.state_size = 8
    cfg.surrogate.window_days = 0
    cfg.surrogate.batch_size = 48
    cfg.surrogate.learning_rate = 3e-3
    cfg.surrogate.tasks = ["Qle", "Qh"]
    cfg.surrogate.patience = 0
    cfg.calibration.sources = ["default", "mdpl"]
    cfg.calibration.learning_rate = GENERATOR_LR
    cfg.calibration.quick_epochs = 150
    cfg.calibration.screen_samples = 32
    cfg.calibration.candidates = 2
    return cfg


def _truth(defaults: np.ndarray) -> np.ndarray:
    sp = PARAMETER_SPACE
    u = np.asarray(sp.to_unit(defaults), float)
    for i, site in enumerate(SITES):
        for name, move in MOVES[site].items():
            u[i, sp.index(name)] += move
            assert 0 < u[i, sp.index(name)] < 1, f"{site} {name}: the move leaves the box"
    return np.asarray(sp.from_unit(u), float)


@pytest.fixture(scope="module")
def twin(tmp_path_factory):
    """The twin's result and each site's PFT default parameters (n_sites, P)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixture: runs before conftest's per-test thread limit
    datasets = [site_twin(s, years=N_DAYS / 365.25, seed=0, time_step_s=3600, start=START) for s in SITES]
    defaults = default_priors(PARAMETER_SPACE, [site_features(d) for d in datasets])
    try:
        res = twin_experiment(_config(), tmp_path_factory.mktemp("twin") / "study", datasets=datasets,
                              truth=_truth(defaults), progress=False)
    finally:
        torch.set_num_threads(threads)
    return res, defaults


def test_mdpl_cuts_the_error_against_the_truth(twin):
    res, _ = twin
    s = res.skill[res.skill.flux.isin(["Qle", "Qh"])].pivot_table(index=["site", "flux"], columns="source",
                                                                    values="rmse_vs_truth")
    assert len(s) == 2 * len(SITES)
    by_site = s.groupby(level="site").mean()
    cut = 1.0 - by_site.mdpl / by_site.default
    assert (cut >= MIN_REDUCTION).all(), f"MdPL cut the RMSE against the truth by\n{cut}\n(< {MIN_REDUCTION:.0%})\n{s}"


def test_mdpl_recovers_the_albedo_it_was_not_told(twin):
    """The hidden albedo comes back at both sites: the calibrated value is within half the default's distance of
    the truth (unit cube), moved the right way from opposite sides."""
    res, _ = twin
    p = res.parameters[res.parameters.source == "mdpl"].set_index(["site", "parameter"])
    for site in SITES:
        for name in RECOVERED:
            move = MOVES[site][name]
            err = p.loc[(site, name), "unit_error"]
            assert err < MAX_ERROR_LEFT * abs(move), f"{site} {name}: unit-cube error {err:.3f}, default's {abs(move)}"
