"""The twin experiment: can calibration find parameters we hid in the land model ourselves?

Synthetic forcing from the weather generator; "observations" are the land
model run with hidden true parameters (drawn inside the bounds) plus
day-to-day Gaussian noise. The whole study (:func:`mdpl.study.run_study`)
then calibrates against them as if they were tower data (so this module sits
above the study it runs, beside :mod:`mdpl.transfer`). Verdicts:

- skill: daily Qle and Qh RMSE against the noise-free truth run, with PFT
  defaults and with each calibrated parameter source (the target is a
  reduction of at least 50 %);
- parameters: per-parameter error in the unit cube and in physical units,
  for the identifiable parameters (those whose finite-difference sensitivity
  of daily Qle/Qh around the truth is at least ``sens_threshold`` of the
  largest one) and the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mdpl.config import Config
from mdpl.data.synthetic import default_sites
from mdpl.device import resolve_device
from mdpl.errors import ConfigError
from mdpl.io import atomic_write_text
from mdpl.study import make_model, run_study

TWIN_FLUXES = ("Qle", "Qh", "NEE")


@dataclass
class TwinResult:
    """Outcome of :func:`twin_experiment` (tables as DataFrames; also written as CSV/JSON in ``out_dir``)."""

    out_dir: Path
    skill: pd.DataFrame  # site, flux, source, rmse_vs_truth, reduction_pct (vs default)
    parameters: pd.DataFrame  # site, source, parameter, true, estimate, unit_error, rel_error, sensitivity, identifiable
    summary: dict


def hidden_truth(space, n_sites: int, seed: int, spread: float = 0.3) -> np.ndarray:
    """True parameters (n_sites, P): unit-cube values uniform in [0.5 - spread, 0.5 + spread], seeded."""
    rng = np.random.default_rng([int(seed), 4242])
    u = rng.uniform(0.5 - spread, 0.5 + spread, size=(n_sites, space.n))
    return np.clip(np.asarray(space.from_unit(u), float), space.lower, space.upper)


def make_observations(model, datasets, truth: np.ndarray, *, noise_frac: float = 0.1, seed: int = 0, delta: float = 0.05):
    """Twin observations and sensitivities.

    Runs, per site, the truth and the truth with each parameter moved by
    +-``delta`` in the unit cube (sites that can share a land-model call,
    :func:`mdpl.ils.batching.batch_groups`, run in one). Writes truth + noise (a
    daily Gaussian error of ``noise_frac`` times the daily series' standard
    deviation, added to every step of that day) into the flux fields, all
    marked measured. Returns (datasets with observations, daily truth per site
    {flux: (days,)}, sensitivity (n_sites, P), day labels per site).
    """
    from mdpl.ils.batching import batch_groups, pad_group

    space = model.parameter_space
    P = space.n
    thetas = []
    for i in range(len(datasets)):
        u0 = np.asarray(space.to_unit(truth[i]), float)
        sets = [u0]
        for j in range(P):
            for s in (+1, -1):
                u = u0.copy()
                u[j] = np.clip(u[j] + s * delta, 0.0, 1.0)
                sets.append(u)
        thetas.append(np.clip(np.asarray(space.from_unit(np.stack(sets)), float), space.lower, space.upper))
    runs: list = [None] * len(datasets)
    for group in batch_groups(datasets):
        with torch.no_grad():
            if len(group) == 1:
                res = model.simulate(datasets[group[0]], thetas[group[0]], daily=False)
                runs[group[0]] = _site_run(res, 0, 2 * P + 1, res.time)
                continue
            res = model.simulate(pad_group([datasets[i] for i in group]), np.stack([thetas[i] for i in group]),
                                 daily=False)
        for k, i in enumerate(group):
            runs[i] = _site_run(res, k * (2 * P + 1), 2 * P + 1, None)  # res.time: the first site's labels
    rng = np.random.default_rng([int(seed), 777])
    out, truth_daily, sens, days_all = [], [], [], []
    for i, ds in enumerate(datasets):
        res = runs[i]
        steps = pd.DatetimeIndex(ds["time"].values)
        day_of_step = steps.normalize()
        n_steps = len(steps)
        sub_daily = res.n_time >= n_steps and n_steps > len(day_of_step.unique())
        days = day_of_step.unique()
        ds = ds.copy()
        td, s_site = {}, np.zeros(P)
        for flux in TWIN_FLUXES:
            if sub_daily:
                v_all = res.fluxes[flux][:, :n_steps]
                idx = days.get_indexer(day_of_step)
                daily = np.stack([np.bincount(idx, weights=row, minlength=len(days)) for row in v_all])
                daily = daily / np.bincount(idx, minlength=len(days))[None]
            else:  # a daily-only model
                daily = res.fluxes[flux]
                if daily.shape[1] < len(days):  # it dropped partial days: its own labels (alone), else the first ones
                    days = pd.DatetimeIndex(res.time).normalize() if res.time is not None else days[: daily.shape[1]]
                daily = daily[:, : len(days)]
            td[flux] = daily[0]
            sd = float(np.nanstd(daily[0])) or 1.0
            noise = noise_frac * sd * rng.standard_normal(len(days))
            idx = days.get_indexer(day_of_step)
            v = res.fluxes[flux][0][:n_steps] if sub_daily else daily[0][idx]
            ds[flux] = ("time", v + noise[idx])
            ds[f"{flux}_measured"] = ("time", np.ones(len(steps), bool))
            if flux in ("Qle", "Qh"):
                for j in range(P):
                    d = (daily[1 + 2 * j] - daily[2 + 2 * j]) / (2 * delta)
                    s_site[j] = max(s_site[j], float(np.sqrt(np.mean(d**2))) / sd)
        for k in ("Qle_cor", "Qh_cor"):
            if k in ds:
                ds[k] = ds[k.replace("_cor", "")]
                ds[f"{k}_measured"] = ds[f"{k.replace('_cor', '')}_measured"]
        out.append(ds)
        truth_daily.append(td)
        sens.append(s_site)
        days_all.append(days)
    return out, truth_daily, np.stack(sens), days_all


@dataclass
class _SiteRun:
    """One site's rows of a land-model result: fluxes {name: (sets, time) float64}, its time labels (None when the
    site shared a call: the result's labels are then another site's)."""

    fluxes: dict
    time: object
    n_time: int


def _site_run(res, start: int, n: int, time) -> _SiteRun:
    fl = {}
    for flux in TWIN_FLUXES:
        v = res.fluxes[flux][start : start + n]
        fl[flux] = (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)).astype(float)
    return _SiteRun(fl, time, fl[TWIN_FLUXES[0]].shape[1])


def truth_errors(series, truth_daily: dict, days, sources, fluxes=TWIN_FLUXES) -> dict:
    """Daily errors against the truth run of one site: (flux, source) -> sim - truth on the series' days.

    ``series``: the site's evaluation series (:meth:`mdpl.study.StudyResult.series`, columns ``sim_<source>_<flux>``);
    ``truth_daily``/``days``: its truth run and day labels (:func:`make_observations`). NaN on a day the truth
    does not have; a (flux, source) without a series is left out. Flux by flux, sources in the order given.
    """
    pos = days.get_indexer(pd.DatetimeIndex(series["day"].values))
    out = {}
    for flux in fluxes:
        truth = np.where(pos >= 0, truth_daily[flux][np.maximum(pos, 0)], np.nan)
        for src in sources:
            name = f"sim_{src}_{flux}"
            if name in series:
                out[(flux, src)] = series[name].values - truth
    return out


def twin_experiment(cfg: Config, out_dir, *, model=None, datasets=None, truth: np.ndarray | None = None,
                    noise_frac: float = 0.1, sens_threshold: float = 0.1, progress: bool = True,
                    device=None) -> TwinResult:
    """Run the twin experiment into ``out_dir`` (a study directory plus ``twin_*`` tables).

    ``datasets`` default to the synthetic twins of ``cfg.data.synthetic_sites``
    (``cfg.data.synthetic_years`` years, seed ``cfg.seed``); ``model`` to the
    embedded LSM; ``truth`` (n_sites, P), physical, to :func:`hidden_truth`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = make_model(cfg, resolve_device(device or cfg.device))
    if datasets is None:
        datasets = default_sites(years=cfg.data.synthetic_years, seed=cfg.seed, sites=cfg.data.synthetic_sites)
    space = model.parameter_space
    if truth is None:
        truth = hidden_truth(space, len(datasets), cfg.seed)
    truth = np.asarray(truth, float)
    if truth.shape != (len(datasets), space.n):
        raise ConfigError(f"twin: truth has shape {truth.shape}, expected ({len(datasets)} sites, {space.n} "
                          "parameters)")
    obs_ds, truth_daily, sens, days = make_observations(model, datasets, truth, noise_frac=noise_frac, seed=cfg.seed)
    study = run_study(cfg, out, progress=progress, datasets=obs_ds, model=model, device=device)

    rel_sens = sens / np.maximum(sens.max(axis=1, keepdims=True), 1e-12)
    ident = rel_sens >= sens_threshold
    skill_rows, par_rows = [], []
    for i, site in enumerate(study.sites):
        errors = truth_errors(study.series(site), truth_daily[i], days[i], ["default", *study.calibrations])
        base: dict[str, float] = {}  # flux -> the defaults' RMSE
        for (flux, src), e in errors.items():
            rmse = float(np.sqrt(np.nanmean(e**2)))
            if src == "default":
                base[flux] = rmse
            b = base.get(flux)
            red = 100.0 * (b - rmse) / b if b else np.nan
            skill_rows.append({"site": site, "flux": flux, "source": src, "rmse_vs_truth": rmse, "reduction_pct": red})
        for src, cal in study.calibrations.items():
            est = cal.params_of(site)
            ue = np.abs(np.asarray(space.to_unit(est)) - np.asarray(space.to_unit(truth[i])))
            for j, name in enumerate(space.names):
                par_rows.append({"site": site, "source": src, "parameter": name, "units": space.units[j],
                                 "true": float(truth[i, j]), "estimate": float(est[j]), "unit_error": float(ue[j]),
                                 "rel_error": float(abs(est[j] - truth[i, j]) / abs(truth[i, j])),
                                 "sensitivity": float(rel_sens[i, j]), "identifiable": bool(ident[i, j])})
    skill = pd.DataFrame(skill_rows)
    params = pd.DataFrame(par_rows)
    summary = {"noise_frac": noise_frac, "sens_threshold": sens_threshold, "sources": {}}
    for src in study.calibrations:
        s = skill[(skill.source == src) & skill.flux.isin(["Qle", "Qh"])]
        p = params[(params.source == src)]
        pi = p[p.identifiable]
        summary["sources"][src] = {
            "mean_reduction_pct": {f: float(s[s.flux == f].reduction_pct.mean()) for f in ("Qle", "Qh")},
            "min_reduction_pct": {f: float(s[s.flux == f].reduction_pct.min()) for f in ("Qle", "Qh")},
            "identifiable_mean_unit_error": float(pi.unit_error.mean()) if len(pi) else float("nan"),
            "other_mean_unit_error": float(p[~p.identifiable].unit_error.mean()) if (~p.identifiable).any() else float("nan"),
            "identifiable_within_0.15": float((pi.unit_error <= 0.15).mean()) if len(pi) else float("nan"),
        }
    atomic_write_text(out / "twin_skill.csv", skill.to_csv(index=False))
    atomic_write_text(out / "twin_parameters.csv", params.to_csv(index=False))
    atomic_write_text(out / "twin_summary.json", json.dumps(summary, indent=1))
    return TwinResult(out, skill, params, summary)
