"""The design twin's runner: truth and observations, the study, the leave-one-site-out transfer, the tables.

:func:`design_experiment` writes its tables (small CSV/JSON, listed in
:data:`DESIGN_TABLES` and described in :mod:`mdpl.twin_design`) into the study
directory; :func:`load_design` reads them back.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.io import atomic_write_json, atomic_write_text
from mdpl.twin_design.rule import RULE, climate_indices, pft_defaults, rule_truth
from mdpl.twin_design.scoring import SKILL_FLUXES, mean_rmse, recovery_tables, skill_rows
from mdpl.twin_design.sites import TOWERS_PER_GROUP, design_sites

#: the transfer's sources the design scores beside the study's (mdpl.transfer)
TWIN_SOURCES_EXTRA = ("loso", "loso_own")
#: the tables of a finished design twin, in the order of :class:`DesignResult`'s fields
DESIGN_TABLES = ("design_sites.csv", "design_recovery.csv", "design_rule.csv", "design_skill.csv",
                 "design_summary.json")
#: significant digits of the numbers in the CSV tables
CSV_FLOAT_FORMAT = "%.6g"


@dataclass
class DesignResult:
    """Outcome of :func:`design_experiment` (the tables it wrote, as DataFrames)."""

    out_dir: Path
    sites: pd.DataFrame
    recovery: pd.DataFrame
    rule: pd.DataFrame
    skill: pd.DataFrame
    summary: dict


def _site_table(space, feats, truth, rule) -> pd.DataFrame:
    """One row a site: group, IGBP, latitude, climate indices and the true values of the rule's parameters."""
    return pd.DataFrame([{"site": str(f.site), "pft_group": str(f.pft_group), "igbp": str(f.igbp),
                          "latitude": float(f.static_var("latitude")), **climate_indices(f),
                          **{f"true_{p}": float(th[space.index(p)]) for p in rule}}
                         for f, th in zip(feats, truth)])


def _study_estimates(space, sites, igbp, study) -> tuple[dict, dict]:
    """Per source (the defaults and each of the study's calibrations): the (n_sites, P) parameters it returned,
    and where it was free to move them (the Sobol screen's verdict; everywhere for a source without a screen)."""
    estimates = {"default": pft_defaults(space, igbp)}
    moved = {"default": np.ones((len(sites), space.n), bool)}
    for src, cal in study.calibrations.items():
        estimates[src] = np.stack([cal.params_of(s) for s in sites])
        sens_tab = cal.tables.get("sensitivity")
        m = np.ones((len(sites), space.n), bool)
        if sens_tab is not None and "calibrated" in sens_tab:
            free = sens_tab.groupby(["site", "parameter"]).calibrated.max()
            for i, s in enumerate(sites):
                for j, p in enumerate(space.names):
                    m[i, j] = bool(free.get((s, p), True))
        moved[src] = m
    return estimates, moved


def _transfer(cfg, out: Path, obs_ds, model, feats, space, sites, estimates, moved, series, *, transfer_epochs,
              progress) -> tuple[dict, list[str]]:
    """Experiment 4 on the design: leave one site out within each PFT group; adds its sources' parameters to
    ``estimates``/``moved`` and its series to ``series`` (in place). Returns the groups and the added sources."""
    from mdpl.calibrate.series import merged_series
    from mdpl.transfer import groups_of, load_transfer, loso_transfer

    groups = groups_of({s: f for s, f in zip(sites, feats)})
    if not groups:
        return groups, []
    tcfg = cfg
    if transfer_epochs:
        tcfg = copy.deepcopy(cfg)
        tcfg.calibration.quick_epochs = tcfg.calibration.epochs = int(transfer_epochs)
    loso_transfer(tcfg, out, obs_ds, model=model, progress=progress)
    _, tseries = load_transfer(out)
    tparams = pd.read_csv(out / "transfer" / "parameters.csv")
    for s, ts in tseries.items():
        series[s] = merged_series(series[s], ts)
    for src in TWIN_SOURCES_EXTRA:
        p = tparams[tparams.source == src].set_index("site")
        if len(p):
            keep = [i for i, s in enumerate(sites) if s in p.index]
            est = estimates["default"].copy()
            for i in keep:
                est[i] = p.loc[sites[i], space.names].to_numpy(float)
            estimates[src] = est
            moved[src] = np.zeros_like(moved["default"])
            moved[src][keep] = moved["mdpl"][keep] if src == "loso_own" else True
    return groups, list(TWIN_SOURCES_EXTRA)


def _write_tables(out: Path, res: DesignResult) -> None:
    """The five tables of :data:`DESIGN_TABLES`, each written atomically."""
    for name, table in zip(DESIGN_TABLES, (res.sites, res.recovery, res.rule, res.skill)):
        atomic_write_text(out / name, table.to_csv(index=False, float_format=CSV_FLOAT_FORMAT))
    atomic_write_json(out / DESIGN_TABLES[-1], res.summary, default=float)


def design_experiment(cfg, out_dir, *, per_group: int = TOWERS_PER_GROUP, groups: tuple[str, ...] | None = None,
                      years: float | None = None, time_step_s: int = 1800, rule: dict | None = None, model=None,
                      datasets=None, noise_frac: float = 0.1, transfer: bool = True, transfer_epochs: int | None = None,
                      progress: bool = True, device=None) -> DesignResult:
    """Run the design twin into ``out_dir``: study, leave-one-site-out transfer, scores against the truth.

    ``datasets`` default to :func:`design_sites` (``per_group`` towers of each of ``groups``, ``years``
    years, default ``cfg.data.synthetic_years``, seed ``cfg.seed``); ``model`` to the embedded LSM on
    ``device`` (default ``cfg.device``: the GPU when present). ``transfer`` False skips experiment 4;
    ``transfer_epochs`` trains its 2 x n_sites generators for that many epochs instead of the study's (they
    dominate the cost on a CPU; the study's own stages are unchanged).
    """
    from mdpl.data.features import site_features
    from mdpl.device import resolve_device
    from mdpl.study import make_model, run_study
    from mdpl.twin import make_observations

    t0 = time.perf_counter()
    out = Path(out_dir)
    rule = RULE if rule is None else dict(rule)
    if datasets is None:
        datasets = design_sites(per_group, groups=groups, years=cfg.data.synthetic_years if years is None else years,
                                seed=cfg.seed, time_step_s=time_step_s)
    if model is None:
        model = make_model(cfg, resolve_device(device or cfg.device))
    space = model.parameter_space
    feats0 = [site_features(ds, 0.0) for ds in datasets]
    truth = rule_truth(space, feats0, rule)
    out.mkdir(parents=True, exist_ok=True)
    obs_ds, truth_daily, _, days = make_observations(model, datasets, truth, noise_frac=noise_frac, seed=cfg.seed)
    study = run_study(cfg, out, progress=progress, datasets=obs_ds, model=model, device=device)
    t_study = time.perf_counter() - t0

    sites = [str(f.site) for f in feats0]
    igbp = [str(f.igbp) for f in feats0]
    site_df = _site_table(space, feats0, truth, rule)
    estimates, moved = _study_estimates(space, sites, igbp, study)
    series = {s: study.series(s) for s in sites}
    test_masks = {s: series[s]["test"].values.astype(bool) for s in sites}
    sources = ["default", *study.calibrations]
    t_transfer = 0.0
    transfer_groups: dict = {}
    if transfer and "mdpl" in study.calibrations:
        t1 = time.perf_counter()
        transfer_groups, extra = _transfer(cfg, out, obs_ds, model, feats0, space, sites, estimates, moved, series,
                                           transfer_epochs=transfer_epochs, progress=progress)
        sources += extra
        t_transfer = time.perf_counter() - t1
    skill = pd.DataFrame(skill_rows(series, truth_daily, days, sites, test_masks, sources))
    recovery, rule_summary = recovery_tables(space, sites, igbp, truth, estimates, moved, rule)

    summary = {
        "sites": len(sites), "groups": sorted(set(site_df.pft_group)),
        "per_group": {g: int(n) for g, n in site_df.pft_group.value_counts().sort_index().items()},
        "noise_frac": noise_frac, "mode": cfg.mode, "device": str(getattr(model, "device", device or cfg.device)),
        "rule": {p: {"a_T": a, "a_D": b} for p, (a, b) in rule.items()},
        "heldout_rmse_vs_truth": {src: {f: mean_rmse(skill, src, f) for f in SKILL_FLUXES}
                                  for src in dict.fromkeys(skill.source) if len(skill)},
        "transfer_sites": sorted(s for g in transfer_groups.values() for s in g),
        "transfer_epochs": int(transfer_epochs) if transfer_epochs else None,
        "wall_s": {"study": t_study, "transfer": t_transfer, "total": time.perf_counter() - t0},
    }
    res = DesignResult(out, site_df, recovery, rule_summary, skill, summary)
    _write_tables(out, res)
    return res


def load_design(out_dir) -> DesignResult | None:
    """The tables of a finished :func:`design_experiment` in ``out_dir`` (None when some are missing)."""
    out = Path(out_dir)
    if not all((out / n).is_file() for n in DESIGN_TABLES):
        return None
    return DesignResult(out, *(pd.read_csv(out / n) for n in DESIGN_TABLES[:4]),
                        json.loads((out / DESIGN_TABLES[-1]).read_text()))
