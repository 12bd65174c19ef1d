"""The whole MdPL study, end to end, cached on disk: what the CLI and the book chapters call.

:func:`run_study` does, for the configured sites (real files when at hand,
else synthetic twins)::

    sites -> perturbed parameter ensemble -> single- and multi-task surrogates
          -> fidelity reports -> calibrations (default, mdpl, dpl, direct[, classical])
          -> land-model runs with every parameter source -> metrics

Every stage (:mod:`mdpl.stages`) writes its result under ``out_dir``
atomically, with a fingerprint of everything it read
(:func:`mdpl.cache.stage_fingerprints`): the content
of the site data (values, time axis, attributes including the files' paths,
so the resolved data directory too), the configuration sections it uses, the
fingerprints of the stages upstream, and the package version and source of
the code it runs. A rerun reuses every stage whose fingerprint still matches
(so an interrupted run resumes, and a notebook can call :func:`load_study`
without recomputing anything) and recomputes exactly those that read a
change: new observations redo the calibrations and scores but not the
land-model ensemble; new forcing at one site redoes that site's ensemble
runs only. A damaged cache file (truncated netCDF, empty ``stage.json``) is
recomputed, never read. A site whose record leaves no measured calibration
or held-out days is a :class:`mdpl.DataError` before any work; held-out
scores that still come out missing are warnings in ``study.json``.

Layout of ``out_dir``::

    config.yaml              resolved configuration
    ensemble/                the ensemble store (mdpl.ensemble); inputs.json: per-site fingerprints of its inputs
    surrogates/{multitask,singletask}/   trained surrogates (checkpoints)
    fidelity/{kind}.json     surrogate vs land model on held-out members
    calibration/{source}/    result.json, history.csv, generator.pt
    refine/{source}/         refinement runs (round1/, ...) and the refined surrogate (calibration.refine_rounds > 0)
    evaluation/records.json  metric records (also metrics.json at the top)
    evaluation/series_{site}.nc   daily land-model series per source + observations
    evaluation/surrogate_gap.json surrogate vs land model at the calibrated parameters
    metrics.json             {"records": [...]} one per site/flux/period/scale/source
    parameters.csv           site, source, one column per parameter (units in the header)
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.cache import fingerprint, stage_fingerprints
from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.seeds import extra_seeds, seeded_config, seeded_name
from mdpl.calibrate.selection import generator_params
from mdpl.calibrate.sources import KIND_OF, check_sources
from mdpl.calibrate.verdicts import check_verdicts_possible, verdict_warnings
from mdpl.config import Config, ensemble_members, save_config
from mdpl.errors import ConfigError
from mdpl.io import atomic_write_text, read_json_or_none
from mdpl import workers
from mdpl.stages import (calibration_stage, default_params, ensemble_stage, evaluation_stage, fidelity_stage, log,
                         surrogate_stage)


def make_model(cfg: Config, device):
    """The land model of the study (the embedded LSM, on ``device``)."""
    from mdpl.ils.model import EmbeddedLSM

    return EmbeddedLSM(cfg.lsm, device=device)


def load_study_sites(cfg: Config):
    """(datasets, 'real' | 'synthetic') of the configured sites."""
    from mdpl.data import study_sites

    return study_sites(cfg)


# -- result ---------------------------------------------------------------------------------
@dataclass
class StudyResult:
    """Everything a chapter needs, loaded from ``out_dir``."""

    out_dir: Path
    data_source: str  # 'real' | 'synthetic'
    sites: list[str]
    records: pd.DataFrame  # one row per site/flux/period/scale/source with rmse, r, nse, kge, bias, n
    parameters: pd.DataFrame  # site, source, one column per parameter
    calibrations: dict[str, CalibrationResult] = field(default_factory=dict)
    fidelity: dict[str, dict] = field(default_factory=dict)
    surrogate_gap: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def credibility(self, **kw) -> pd.DataFrame:
        """Per calibrated source: sites better on both fluxes, NEE kept, parameters on a bound
        (:func:`mdpl.evaluate.credibility.credibility`)."""
        from mdpl.evaluate.credibility import credibility
        from mdpl.ils.parameters import PARAMETER_SPACE

        cols = [c.split(" [")[0] for c in self.parameters.columns]
        if not set(PARAMETER_SPACE.names) <= set(cols):  # another model's parameters: no bound count
            return credibility(self.records, None, PARAMETER_SPACE, **kw)
        cfg = self.out_dir / "config.yaml"
        if "trust_radius" not in kw and cfg.is_file():
            import yaml

            kw["trust_radius"] = float((yaml.safe_load(cfg.read_text()) or {}).get("calibration", {}).get("trust_radius", 0.0))
        return credibility(self.records, self.parameters, PARAMETER_SPACE, **kw)

    def seed_results(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(records, parameters) of the surrogate routes for every seed (column ``seed``; ``calibration.seeds``);
        empty frames when the study ran one seed only."""
        p = self.out_dir / "evaluation" / "seeds.json"
        if not p.is_file():
            return pd.DataFrame(), pd.DataFrame()
        raw = json.loads(p.read_text())
        return pd.DataFrame(raw["records"]), pd.DataFrame(raw["parameters"])

    def credibility_by_seed(self, **kw) -> pd.DataFrame:
        """:meth:`credibility` once per seed (rows: seed, source, ...); empty for a one-seed study."""
        from mdpl.evaluate.credibility import credibility
        from mdpl.ils.parameters import PARAMETER_SPACE

        recs, params = self.seed_results()
        if recs.empty or recs.seed.nunique() < 2:
            return pd.DataFrame()
        default_p = self.parameters[self.parameters.source == "default"].rename(
            columns=lambda c: c.split(" [")[0])
        rows = []
        for seed, g in recs.groupby("seed"):
            base = self.records[self.records.source == "default"]
            p = params[params.seed == seed].drop(columns="seed")
            pp = pd.concat([default_p, p], ignore_index=True) if set(PARAMETER_SPACE.names) <= set(p.columns) else None
            cr = credibility(pd.concat([base, g[g.source != "default"]], ignore_index=True), pp, PARAMETER_SPACE, **kw)
            rows.append(cr.assign(seed=int(seed)))
        out = pd.concat(rows, ignore_index=True)
        return out[["seed"] + [c for c in out.columns if c != "seed"]]

    def sensitivity(self, source: str = "mdpl") -> pd.DataFrame:
        """Sobol indices of the screen behind ``source`` (site, flux, parameter, S1, ST, calibrated); empty if none."""
        cal = self.calibrations.get(source)
        return cal.tables.get("sensitivity", pd.DataFrame()) if cal is not None else pd.DataFrame()

    def headline(self, *, period="test", scale="daily", source="mdpl", baseline="default") -> dict:
        """Per flux: sites where ``source`` beats ``baseline`` on RMSE, of how many, and the mean RMSE change (%)."""
        s = self.summary(period=period, scale=scale, source=source, baseline=baseline)
        out = {}
        for flux, g in s.groupby("flux"):
            out[flux] = {"improved": int((g[f"rmse_{source}"] < g[f"rmse_{baseline}"]).sum()), "sites": int(len(g)),
                         "mean_rmse_change_pct": float(g.rmse_change_pct.mean())}
        both = s[s.flux.isin(["Qle", "Qh"])]
        if not both.empty:
            better = both.assign(b=both[f"rmse_{source}"] < both[f"rmse_{baseline}"]).groupby("site").b.all()
            out["Qle_and_Qh"] = {"improved": int(better.sum()), "sites": int(len(better)),
                                 "mean_rmse_change_pct": float(both.rmse_change_pct.mean())}
        return out

    def fidelity_table(self) -> pd.DataFrame:
        """Surrogate fidelity rows (kind, flux, site, scope, rmse, r, r2, ...) of every trained surrogate."""
        rows = [{"kind": k, **r} for k, rep in self.fidelity.items() for r in rep.get("rows", [])]
        return pd.DataFrame(rows)

    def series(self, site: str):
        """Daily series of one site (xarray Dataset: obs_* and sim_{source}_* per flux)."""
        import xarray as xr

        return xr.load_dataset(self.out_dir / "evaluation" / f"series_{site}.nc")

    def table(self, *, period="test", scale="daily", metric="rmse") -> pd.DataFrame:
        """Pivot: rows (site, flux), columns source, values ``metric``."""
        r = self.records
        r = r[(r.period == period) & (r.scale == scale)]
        return r.pivot_table(index=["site", "flux"], columns="source", values=metric)

    def summary(self, *, period="test", scale="daily", source="mdpl", baseline="default") -> pd.DataFrame:
        """Per site and flux: baseline and source RMSE, R, KGE and the relative RMSE change (%)."""
        rows = []
        r = self.records[(self.records.period == period) & (self.records.scale == scale)]
        for (site, flux), g in r.groupby(["site", "flux"]):
            b, s = g[g.source == baseline], g[g.source == source]
            if b.empty or s.empty:
                continue
            b, s = b.iloc[0], s.iloc[0]
            rows.append({"site": site, "flux": flux, f"rmse_{baseline}": b.rmse, f"rmse_{source}": s.rmse,
                         f"r_{baseline}": b.r, f"r_{source}": s.r, f"kge_{baseline}": b.kge, f"kge_{source}": s.kge,
                         "rmse_change_pct": 100.0 * (s.rmse - b.rmse) / b.rmse if b.rmse else np.nan})
        return pd.DataFrame(rows)


# -- the study ------------------------------------------------------------------------------
def _sites_and_features(cfg: Config, datasets=None):
    """(datasets, features, (train, test) masks, 'real' | 'synthetic' | 'given') of the study's sites."""
    from mdpl.data.features import site_features, split_periods

    source = "given"
    if datasets is None:
        datasets, source = load_study_sites(cfg)
    feats = [site_features(ds, cfg.data.min_measured_fraction) for ds in datasets]
    split = [split_periods(f.days) for f in feats]
    return datasets, feats, split, source


def _surrogates(cfg: Config, store, kinds, out: Path, device, progress: bool, fps: dict, timings: dict):
    """Every surrogate the routes need, frozen, each with its fidelity report written: {kind: surrogate}."""
    surrogates = {}
    for kind in kinds:
        t = time.perf_counter()
        log(progress, f"surrogate: {kind}")
        surrogates[kind] = surrogate_stage(cfg, store, kind, out, device, progress, fps["surrogate"][kind])
        surrogates[kind].freeze()
        timings[f"surrogate_{kind}_s"] = time.perf_counter() - t
        fidelity_stage(surrogates[kind], store, kind, out, fps["surrogate"][kind])
    return surrogates


def _seeded_calibrations(cfg: Config, sources, store, *, model, datasets, feats, split, out: Path, device,
                         progress: bool, sur_fp: str, cal_fp: str, timings: dict) -> dict[str, CalibrationResult]:
    """``calibration.seeds - 1`` more surrogates and generators per surrogate route (seeds seed+1, ...), on the
    same ensemble: the spread over seeds of the parameters and the skill (:mod:`mdpl.calibrate.seeds`)."""
    out_cals: dict[str, CalibrationResult] = {}
    routes = [s for s in sources if s in KIND_OF]
    if not routes or store is None:
        return out_cals
    for k in extra_seeds(cfg):
        cfg_k = seeded_config(cfg, k)
        t = time.perf_counter()
        surs = {}
        for kind in dict.fromkeys(KIND_OF[r] for r in routes):
            log(progress, f"surrogate: {kind}, seed {cfg_k.seed}")
            surs[kind] = surrogate_stage(cfg_k, store, kind, out, device, progress, fingerprint(sur_fp, kind, k),
                                         name=seeded_name(kind, k))
            surs[kind].freeze()
        for r in routes:
            name = seeded_name(r, k)
            log(progress, f"calibration: {r}, seed {cfg_k.seed}")
            out_cals[name] = calibration_stage(r, cfg_k, model=model, datasets=datasets, feats=feats, split=split,
                                               surrogates=surs, out=out, fp=fingerprint(cal_fp, r, k),
                                               progress=progress, store=store, device=device, name=name)
        timings[f"seed_{k}_s"] = time.perf_counter() - t
    return out_cals


#: routes that run the land model itself and need no ensemble: they can run beside it
LAND_ROUTES = ("direct", "classical")
#: the surrogate kind whose training and calibrations go to the second lane (the cheaper of the two)
LANE_KIND = "multitask"


def _lane_land_routes(routes, cfg: Config, datasets, feats, split, out: Path, fps: dict, device) -> dict[str, float]:
    """Worker lane: the land-model routes (direct, classical) into their caches; {timing key: wall s}."""
    model = make_model(cfg, device)
    timings = {}
    for src in routes:
        t = time.perf_counter()
        calibration_stage(src, cfg, model=model, datasets=datasets, feats=feats, split=split, surrogates={}, out=out,
                          fp=fps["calibration"][src], progress=False, store=None, device=device)
        timings[f"calibrate_{src}_s"] = time.perf_counter() - t
    return timings


def _lane_surrogate_routes(kind: str, routes, cfg: Config, datasets, feats, split, out: Path, fps: dict,
                           device) -> dict[str, float]:
    """Worker lane: one surrogate kind (trained, fidelity report) and the routes through it, into their caches."""
    from mdpl.ensemble import EnsembleStore

    store = EnsembleStore.open(out / "ensemble")
    timings: dict[str, float] = {}
    surrogates = _surrogates(cfg, store, [kind], out, device, False, fps, timings)
    model = make_model(cfg, device)
    for src in routes:
        t = time.perf_counter()
        calibration_stage(src, cfg, model=model, datasets=datasets, feats=feats, split=split, surrogates=surrogates,
                          out=out, fp=fps["calibration"][src], progress=False, store=store, device=device)
        timings[f"calibrate_{src}_s"] = time.perf_counter() - t
    return timings


def _run_in_lanes(cfg: Config, sources, need_kinds, *, lane, model, datasets, feats, split, out: Path, fps: dict,
                  device, progress: bool, after=()) -> tuple[dict[str, float], list]:
    """Fill the caches of the ensemble, the surrogates and the calibrations on two lanes.

    This process runs the ensemble, then the surrogate kind(s) other than
    :data:`LANE_KIND` and their routes; ``lane``, a one-worker pool
    (:func:`mdpl.workers.pool`), runs the land-model routes beside the
    ensemble (they do not read it),
    then :data:`LANE_KIND` and its routes, then each ``(function, args)`` of
    ``after`` (picklable; returns {timing key: s}; the book's transfer
    experiment, which needs only the multi-task surrogate). Each stage writes
    the same cache with the same fingerprint as in one process, so
    :func:`run_study` then goes through every stage in order and loads them.
    Returns ({timing key: wall s}, the futures of ``after``, still running).
    """
    timings: dict[str, float] = {}
    land = [s for s in sources if s in LAND_ROUTES]
    kinds = list(dict.fromkeys(need_kinds))
    lane_kind = LANE_KIND if LANE_KIND in kinds and len(kinds) > 1 else None
    jobs = []
    if land:
        log(progress, f"calibration: {', '.join(land)} in a second process, beside the ensemble")
        jobs.append(lane.submit(_lane_land_routes, land, cfg, datasets, feats, split, out, fps, device))
    store = None
    if kinds:
        t = time.perf_counter()
        log(progress, f"ensemble: {ensemble_members(cfg)} members per site")
        store = ensemble_stage(cfg, datasets, model, out, progress, fps)
        timings["ensemble_s"] = time.perf_counter() - t
    if lane_kind:
        routes = [s for s in sources if KIND_OF.get(s) == lane_kind]
        log(progress, f"surrogate: {lane_kind}, calibration: {', '.join(routes)} in a second process")
        jobs.append(lane.submit(_lane_surrogate_routes, lane_kind, routes, cfg, datasets, feats, split, out, fps,
                                device))
    later = [lane.submit(fn, *args) for fn, args in after]
    for kind in (k for k in kinds if k != lane_kind):
        sur = _surrogates(cfg, store, [kind], out, device, progress, fps, timings)
        for src in (s for s in sources if KIND_OF.get(s) == kind):
            t = time.perf_counter()
            log(progress, f"calibration: {src}")
            calibration_stage(src, cfg, model=model, datasets=datasets, feats=feats, split=split, surrogates=sur,
                              out=out, fp=fps["calibration"][src], progress=progress, store=store, device=device)
            timings[f"calibrate_{src}_s"] = time.perf_counter() - t
    for job in jobs:
        timings.update(job.result())
    return timings, later


def run_study(cfg: Config, out_dir, *, progress: bool = True, datasets=None, model=None, device=None,
              check_verdicts: bool | None = None, jobs: int = 1, lane_after=()) -> StudyResult:
    """Run (or resume) the whole study into ``out_dir`` and return it loaded.

    ``datasets``/``model`` override the configured sites and the embedded
    land model (tests, other models); ``device`` overrides ``cfg.device``.
    Sources come from ``cfg.calibration.sources``. ``check_verdicts`` (default:
    when the sites are the configured ones, not ``datasets``): refuse, before
    any work, sites without measured calibration and held-out days, and warn
    in ``study.json`` about held-out scores that come out missing; the twin
    experiment, which scores against the truth over whole records, passes
    its own datasets and is exempt. ``jobs`` >= 2 (the embedded land model
    on a CPU): the stages that do not depend on each other run on two lanes
    first (:func:`_run_in_lanes`), with the same caches and results as in
    one process; ``lane_after``: more ``(function, args)`` for the second
    lane once its surrogate routes are done (ignored in one process).
    """
    import torch

    from mdpl.config import default_data_dir
    from mdpl.device import resolve_device
    from mdpl.io import check_output_dir

    out = check_output_dir(out_dir, option="output directory", data_dirs=[cfg.data.data_dir or default_data_dir()],
                           create=False)
    torch.manual_seed(int(cfg.seed))
    np.random.seed(int(cfg.seed) % (2**32))
    dev = resolve_device(device or cfg.device)
    timings: dict[str, float] = {}
    sources = check_sources(cfg.calibration.sources)

    t = time.perf_counter()
    datasets, feats, split, data_source = _sites_and_features(cfg, datasets)
    site_names = [str(f.site) for f in feats]
    timings["sites_s"] = time.perf_counter() - t
    log(progress, f"{len(feats)} sites ({data_source}): {', '.join(site_names)}")
    lanes = int(jobs) > 1 and model is None and dev.type == "cpu"  # a model given in memory stays in this process
    if model is None:
        model = make_model(cfg, dev)
    if check_verdicts is None:
        check_verdicts = data_source != "given"
    if check_verdicts:
        check_verdicts_possible(feats, split, cfg)
    fps = stage_fingerprints(cfg, model, datasets, data_source, sources)
    out.mkdir(parents=True, exist_ok=True)  # only now: a run refused above leaves nothing behind
    save_config(cfg, out / "config.yaml")

    with contextlib.ExitStack() as stack:  # a failure stops the lane's worker too
        surrogates: dict = {}
        store = None
        need_kinds = [KIND_OF[s] for s in sources if s in KIND_OF]
        lane = stack.enter_context(workers.pool(1)) if lanes else None  # the second lane, until the study is written
        if lane is not None:
            stack.enter_context(workers.torch_threads(1))  # this process shares the cores with it
        lane_timings, later = _run_in_lanes(cfg, sources, need_kinds, lane=lane, model=model, datasets=datasets,
                                            feats=feats, split=split, out=out, fps=fps, device=dev, progress=progress,
                                            after=lane_after) if lane is not None else ({}, [])
        if need_kinds:
            t = time.perf_counter()
            log(progress, f"ensemble: {ensemble_members(cfg)} members per site")
            store = ensemble_stage(cfg, datasets, model, out, progress, fps)
            timings["ensemble_s"] = time.perf_counter() - t
            surrogates = _surrogates(cfg, store, need_kinds, out, dev, progress, fps, timings)

        calibrations: dict[str, CalibrationResult] = {}
        for src in sources:
            if src == "default":
                continue
            t = time.perf_counter()
            log(progress, f"calibration: {src}")
            calibrations[src] = calibration_stage(src, cfg, model=model, datasets=datasets, feats=feats, split=split,
                                                  surrogates=surrogates, out=out, fp=fps["calibration"][src],
                                                  progress=progress, store=store, device=dev)
            timings[f"calibrate_{src}_s"] = time.perf_counter() - t
        sur_fp, cal_fp = fingerprint(fps["surrogate"]), fingerprint(fps["calibration"], fps["surrogate"])  # seeded runs
        seeded = _seeded_calibrations(cfg, sources, store, model=model, datasets=datasets, feats=feats, split=split,
                                      out=out, device=dev, progress=progress, sur_fp=sur_fp if need_kinds else "",
                                      cal_fp=cal_fp, timings=timings)

        space = model.parameter_space
        default = CalibrationResult("default", site_names, list(space.names), list(space.units), default_params(model, feats))
        run_params = {"default": default.params, **{k: generator_params(v) for k, v in {**calibrations, **seeded}.items()}}
        records = evaluation_stage(cfg, model=model, datasets=datasets, feats=feats, split=split, sources=sources,
                                   calibrations=calibrations, seeded=seeded, surrogates=surrogates, run_params=run_params,
                                   out=out, fp=fps["evaluation"], progress=progress, timings=timings)
        for job in later:  # the lane's last jobs (the book's transfer) ran beside the evaluation
            lane_timings.update(job.result())
        timings.update(lane_timings)  # what the stages cost where they ran, not their cache loads above

        atomic_write_text(out / "metrics.json", json.dumps({"records": records}, indent=1))
        write_parameters_csv(calibrations, default, out / "parameters.csv")
        verdict = verdict_warnings(records, sources, cfg) if check_verdicts else []
        for msg in verdict:
            log(True, f"WARNING: {msg}")
        warnings_ = (read_json_or_none(out / "evaluation" / "warnings.json") or {}).get("warnings", []) + verdict
        old = read_json_or_none(out / "study.json")
        tim = {**(old.get("timings", {}) if isinstance(old, dict) else {}), **timings}
        atomic_write_text(out / "study.json", json.dumps({"data_source": data_source, "sites": site_names,
                                                          "sources": sources, "timings": tim,
                                                          "warnings": warnings_}, indent=1))
        return load_study(out)


def write_parameters_csv(calibrations: dict[str, CalibrationResult], default: CalibrationResult, path: Path) -> Path:
    """parameters.csv: site, source, one column per parameter named ``name [units]``."""
    frames = [default.frame()] + [c.frame() for c in calibrations.values()]
    df = pd.concat(frames, ignore_index=True)
    units = dict(zip(default.param_names, default.param_units))
    df = df.rename(columns={n: f"{n} [{u}]" for n, u in units.items()})
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))
    return path


def load_study(out_dir) -> StudyResult:
    """Load a finished study from ``out_dir`` (no computation)."""
    out = Path(out_dir)
    if not (out / "metrics.json").is_file() or not (out / "study.json").is_file():
        raise ConfigError(f"{out}: no finished study here (run `mdpl calibrate --out {out}` first)")
    meta = json.loads((out / "study.json").read_text())
    records = pd.DataFrame(json.loads((out / "metrics.json").read_text())["records"])
    params = pd.read_csv(out / "parameters.csv")
    cals = {}
    for src in meta["sources"]:
        d = out / "calibration" / src
        if CalibrationResult.exists(d):
            cals[src] = CalibrationResult.load(d)
    fid = {}
    for p in sorted((out / "fidelity").glob("*.json")) if (out / "fidelity").is_dir() else []:
        fid[p.stem] = json.loads(p.read_text())
    gp = out / "evaluation" / "surrogate_gap.json"
    gap = json.loads(gp.read_text())["records"] if gp.is_file() else []
    return StudyResult(out, meta["data_source"], meta["sites"], records, params, cals, fid, gap, meta.get("timings", {}),
                       meta.get("warnings", []))

