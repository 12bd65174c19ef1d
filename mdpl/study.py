"""The whole MdPL study, end to end, cached on disk: what the CLI and the book chapters call.

:func:`run_study` does, for the configured sites (real files when at hand,
else synthetic twins)::

    sites -> perturbed parameter ensemble -> single- and multi-task surrogates
          -> fidelity reports -> calibrations (default, mdpl, dpl, direct[, classical])
          -> land-model runs with every parameter source -> metrics

Every stage writes its result under ``out_dir`` atomically, with a
fingerprint of everything it read (:func:`stage_fingerprints`): the content
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

import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.selection import SEP as SEL_SEP  # candidate keys: f"{source}@{epoch}"
from mdpl.config import Config, config_to_dict, save_config
from mdpl.errors import ConfigError, DataError, MdplError
from mdpl.io import atomic_netcdf, atomic_write_text, read_json_or_none

SOURCES = ("default", "mdpl", "dpl", "direct", "classical")
KIND_OF = {"mdpl": "multitask", "dpl": "singletask"}
#: a surrogate route retrained with another seed is named f"{route}{SEED_SEP}{k}" (calibration.seeds > 1)
SEED_SEP = "_seed"


def _route(name: str) -> str:
    """The route ('mdpl', 'dpl', ...) of a calibration name, seeded or not."""
    return name.split(SEED_SEP)[0]


# -- the cache: what each stage read, as fingerprints ----------------------------------------
def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def code_fingerprint(*parts: str) -> str:
    """The package version and the source of ``parts`` (sub-packages or modules of mdpl, e.g. 'ils', 'study.py').

    A stage whose code changed is recomputed, even in a development checkout
    whose version string did not move.
    """
    import mdpl

    root = Path(mdpl.__file__).resolve().parent
    h = hashlib.sha256(mdpl.__version__.encode())
    for part in parts:
        path = root / part
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def dataset_fingerprint(ds, part: str = "all") -> str:
    """Hash of one site's canonical Dataset: every value, the time axis and the attributes (files, site facts).

    ``part``: 'forcing' (everything but the observed fluxes and their masks:
    what a land-model run reads), 'obs' (only those) or 'all'.
    """
    from mdpl.data.schema import FLUX_VARS, measured_name

    obs = {n for v in FLUX_VARS for n in (v, measured_name(v), f"{v}_qc")}
    names = sorted(str(n) for n in ds.variables if part == "all" or (str(n) in obs) == (part == "obs") or n == "time")
    h = hashlib.sha256(part.encode())
    for n in names:
        a = np.ascontiguousarray(ds[n].values)
        h.update(f"{n}|{a.dtype}|{a.shape}".encode())
        h.update(a.tobytes() if a.dtype != object else str(a.tolist()).encode())
    h.update(json.dumps({k: str(v) for k, v in ds.attrs.items()}, sort_keys=True).encode())
    return h.hexdigest()[:16]


def stage_fingerprints(cfg: Config, model, datasets, data_source: str, sources) -> dict:
    """Fingerprint of every stage, each from exactly what it reads.

    ``ensemble_sites`` (site -> forcing, land model, ensemble plan) and
    ``features`` (site -> forcing and observations) decide which ensemble
    files are reused; ``surrogate[kind]`` adds the surrogate settings;
    ``calibration[source]`` the observations, the calibration settings and,
    for MdPL/dPL, the surrogate; ``evaluation`` is completed in
    :func:`run_study` with the parameters it scores. Every part carries the
    code of the packages it runs.
    """
    from mdpl.config import default_data_dir

    c = config_to_dict(cfg)
    sites = [str(ds.attrs.get("site")) for ds in datasets]
    forcing = {s: dataset_fingerprint(ds, "forcing") for s, ds in zip(sites, datasets)}
    obs = {s: dataset_fingerprint(ds, "obs") for s, ds in zip(sites, datasets)}
    data_dir = cfg.data.data_dir or default_data_dir()
    resolved = str(Path(data_dir).resolve()) if data_source == "real" and data_dir else data_source
    model_id = [getattr(model, "name", type(model).__name__), str(getattr(model, "version", ""))]
    lsm = _fingerprint(c["lsm"], model_id, code_fingerprint("ils"))
    plan = _fingerprint(resolved, lsm, c["seed"], c["mode"], ensemble_members(cfg), c["ensemble"],
                        c["data"]["min_measured_fraction"], sites, code_fingerprint("ensemble", "data"))
    ens_sites = {s: _fingerprint(plan, forcing[s]) for s in sites}
    features = {s: _fingerprint(forcing[s], obs[s], c["data"]["min_measured_fraction"], code_fingerprint("data"))
                for s in sites}
    ensemble = _fingerprint(ens_sites)
    surrogate = {kind: _fingerprint(ensemble, _surrogate_dict(cfg), kind, c["seed"], code_fingerprint("models", "calibrate"))
                 for kind in ("multitask", "singletask")}
    data = _fingerprint(resolved, forcing, obs, c["data"], code_fingerprint("data"))
    cal_base = _fingerprint(data, lsm, c["seed"], c["mode"], c["calibration"], code_fingerprint("calibrate", "models", "study.py"))
    calibration = {}
    for src in sources:
        if src in KIND_OF:  # refinement rounds run the land model and retrain: the ensemble plan counts too
            calibration[src] = _fingerprint(cal_base, src, surrogate[KIND_OF[src]], plan)
        else:
            calibration[src] = _fingerprint(cal_base, src, surrogate)  # the parameter screen may read the surrogate
    evaluation = _fingerprint(data, lsm, code_fingerprint("calibrate", "evaluate", "study.py"),
                              {s: calibration[s] for s in sources if s in KIND_OF})  # + parameters, in run_study
    return {"ensemble": ensemble, "ensemble_sites": ens_sites, "features": features, "surrogate": surrogate,
            "calibration": calibration, "evaluation": evaluation, "data": data}


def _surrogate_dict(cfg: Config) -> dict:
    import dataclasses

    return dataclasses.asdict(surrogate_config(cfg))


def _stage_done(directory: Path, fp: str) -> bool:
    """True when ``directory/stage.json`` records ``fp`` (a missing, empty or damaged stamp: recompute)."""
    stamp = read_json_or_none(directory / "stage.json")
    return isinstance(stamp, dict) and stamp.get("fingerprint") == fp


def _mark_done(directory: Path, fp: str, **extra) -> None:
    atomic_write_text(directory / "stage.json", json.dumps({"fingerprint": fp, **extra}, indent=1))


def _prepare_ensemble_dir(store_dir: Path, fps: dict, progress: bool) -> None:
    """Make ``store_dir`` hold only ensemble files that are valid for this run's inputs.

    ``inputs.json`` records, per site, the fingerprint of what its runs read
    (forcing, land model, plan) and of its features (forcing and
    observations). A site whose runs' inputs changed loses its batches, one
    whose observations alone changed only its features file; damaged files
    are removed; a different site list or a store without the record starts
    afresh. The runner then computes exactly what is missing.
    """
    import shutil

    from mdpl.ensemble.store import MANIFEST, batch_glob, features_file, remove_damaged

    stamp = store_dir / "inputs.json"
    old = read_json_or_none(stamp)
    runs, feats = fps["ensemble_sites"], fps["features"]
    if (store_dir / MANIFEST).is_file():
        if not isinstance(old, dict) or list(old.get("sites", {})) != list(runs) or not isinstance(old.get("features"), dict):
            _log(progress, "ensemble: inputs changed or unrecorded; recomputing it")
            shutil.rmtree(store_dir)
        else:
            for s in runs:
                if old["sites"].get(s) != runs[s]:
                    _log(progress, f"ensemble: inputs of {s} changed; recomputing its runs")
                    for f in batch_glob(store_dir, s):
                        f.unlink()
                    features_file(store_dir, s).unlink(missing_ok=True)
                elif old["features"].get(s) != feats[s]:
                    features_file(store_dir, s).unlink(missing_ok=True)
            for f in remove_damaged(store_dir):
                _log(True, f"warning: damaged ensemble file {f} removed; recomputing it")
    store_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps({"sites": runs, "features": feats}, indent=1))


# -- verdicts that can be computed ----------------------------------------------------------
def calibrated_fluxes(cfg: Config) -> list[str]:
    """The fluxes the calibration fits (non-zero task weight)."""
    return [k for k, w in cfg.calibration.task_weights.items() if w > 0]


def check_verdicts_possible(feats, split, cfg: Config) -> None:
    """Every site needs measured days of each calibrated flux in both periods; else a DataError before any work.

    A record too short for a held-out period (the 28-day block split holds out
    every 4th block: under 85 days there is none) would otherwise give NaN
    for every held-out metric.
    """
    from mdpl.calibrate.targets import observed_daily

    for f, (train, test) in zip(feats, split):
        for flux in calibrated_fluxes(cfg):
            try:
                _, measured, used = observed_daily(f, flux, cfg.data.corrected_fluxes)
            except MdplError:
                raise DataError(f"site {f.site}: no observed {flux} to calibrate against "
                                f"(calibration.task_weights names it)") from None
            for period, mask in (("calibration (train)", train), ("held-out (test)", test)):
                n = int((measured & np.asarray(mask, bool)).sum())
                if n == 0:
                    raise DataError(f"site {f.site}: no measured {used} days in the {period} period "
                                    f"(record {f.n_days} days, {int(np.asarray(mask, bool).sum())} in that period; "
                                    f"a held-out period needs at least 85 days of record); "
                                    f"no verdict could be computed, so nothing was run")


def verdict_warnings(records: list[dict], sources, cfg: Config) -> list[str]:
    """Messages for every held-out daily score of a calibrated flux that is missing or not a number."""
    out = []
    fluxes = calibrated_fluxes(cfg)
    have = {(r["site"], r["flux"], r["source"]): r for r in records if r.get("period") == "test" and r.get("scale") == "daily"}
    sites = sorted({r["site"] for r in records})
    for site in sites:
        for flux in fluxes:
            for src in sources:
                r = have.get((site, flux, src))
                if r is None or not r.get("n") or not np.isfinite(float(r.get("rmse", np.nan))):
                    out.append(f"site {site}, {flux}, {src}: no held-out daily score "
                               f"({'no record' if r is None else str(r.get('n', 0)) + ' scored days'}); "
                               "the verdict for this site is missing")
    return out


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(f"[mdpl study] {msg}", flush=True)


def make_model(cfg: Config, device):
    """The land model of the study (the embedded LSM, on ``device``)."""
    from mdpl.ils.model import EmbeddedLSM

    return EmbeddedLSM(cfg.lsm, device=device)


def load_study_sites(cfg: Config):
    """(datasets, 'real' | 'synthetic') of the configured sites."""
    from mdpl.data import study_sites

    return study_sites(cfg)


def ensemble_members(cfg: Config) -> int:
    e = cfg.ensemble
    return int(getattr(e, "n_members_full", e.n_members) if cfg.mode == "full" else e.n_members)


def surrogate_config(cfg: Config):
    """The surrogate section with the mode's epochs applied."""
    import copy

    s = copy.deepcopy(cfg.surrogate)
    if cfg.mode == "full" and hasattr(s, "epochs_full"):
        s.epochs = s.epochs_full
    return s


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


# -- stages ---------------------------------------------------------------------------------
def _sites_and_features(cfg: Config, datasets=None):
    from mdpl.data.features import site_features, split_periods

    source = "given"
    if datasets is None:
        datasets, source = load_study_sites(cfg)
    feats = [site_features(ds, cfg.data.min_measured_fraction) for ds in datasets]
    split = [split_periods(f.days) for f in feats]
    return datasets, feats, split, source


def _ensemble(cfg: Config, datasets, model, out: Path, progress: bool, fps: dict):
    import shutil

    from mdpl.ensemble.runner import run_ensemble

    store_dir = out / "ensemble"
    _prepare_ensemble_dir(store_dir, fps, progress)

    def run():
        return run_ensemble(datasets, model, model.parameter_space, ensemble_members(cfg), store_dir,
                            batch_size=cfg.ensemble.batch_size, seed=cfg.seed, method=cfg.ensemble.sampler,
                            min_measured_fraction=cfg.data.min_measured_fraction,
                            span=getattr(cfg.ensemble, "span", "all"),
                            max_pad_days=cfg.ensemble.max_pad_days, progress=progress)

    try:
        return run()
    except ConfigError as e:  # the plan itself moved (a site's record length, say): start the store afresh
        if "different settings" not in str(e):
            raise
        _log(progress, "ensemble: plan changed; recomputing it")
        shutil.rmtree(store_dir)
        _prepare_ensemble_dir(store_dir, fps, progress)
        return run()


def _surrogate(cfg: Config, store, kind: str, out: Path, device, progress: bool, fp: str, name: str | None = None):
    from mdpl.calibrate.surrogate_training import TrainedSurrogate, train_surrogate

    d = out / "surrogates" / (name or kind)
    if _stage_done(d, fp):
        try:
            return TrainedSurrogate.load(d, device=device)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint is recomputed, not fatal
            _log(True, f"warning: {d}: damaged surrogate ({type(e).__name__}); retraining it")
    sur = train_surrogate(store, surrogate_config(cfg), kind=kind, device=device, seed=cfg.seed, progress=progress)
    sur.save(d)
    _mark_done(d, fp)
    return sur


def _fidelity(sur, store, kind: str, out: Path, fp: str) -> dict:
    """The surrogate's fidelity report on the held-out members (cached under ``fidelity/{kind}.json``)."""
    from mdpl.calibrate.fidelity import fidelity_report

    path = out / "fidelity" / f"{kind}.json"
    old = read_json_or_none(path)
    if isinstance(old, dict) and old.get("fingerprint") == fp:
        return old
    rep_df = fidelity_report(sur, store)
    worst = rep_df.attrs.get("worst")
    rep = {"rows": json.loads(rep_df.to_json(orient="records")),
           "worst": json.loads(worst.to_json(orient="records")) if isinstance(worst, pd.DataFrame) else []}
    rep = {"fingerprint": fp, "kind": kind, **rep}
    atomic_write_text(path, json.dumps(rep, indent=1, default=float))
    return rep


def _calibrate(source: str, cfg: Config, *, model, datasets, feats, split, surrogates, out: Path, fp: str, progress: bool,
               store=None, device="cpu", name: str | None = None):
    from mdpl.calibrate.classical import calibrate_classical
    from mdpl.calibrate.direct import calibrate_direct
    from mdpl.calibrate.surrogate_route import calibrate_mdpl
    from mdpl.calibrate.surrogate_training import TrainedSurrogate

    d = out / "calibration" / (name or source)
    refined_dir = out / "refine" / (name or source)
    if CalibrationResult.exists(d) and _stage_done(d, fp):
        if source in KIND_OF and (refined_dir / "surrogate").is_dir():  # the gap report needs the refined surrogate
            surrogates[KIND_OF[source]] = TrainedSurrogate.load(refined_dir / "surrogate", device=device)
            surrogates[KIND_OF[source]].freeze()
        return CalibrationResult.load(d)
    train = [s[0] for s in split]
    priors = _default_params(model, feats)
    if source in KIND_OF:
        kind = KIND_OF[source]
        res = calibrate_mdpl(surrogates[kind], feats, cfg, train_masks=train, priors=priors, source=source,
                             progress=progress)
        rounds = int(cfg.calibration.refine_rounds)
        if rounds and store is not None:
            res = _refine(source, kind, res, cfg, model=model, datasets=datasets, feats=feats, train=train,
                          priors=priors, store=store, surrogates=surrogates, refined_dir=refined_dir, device=device,
                          progress=progress)
        if store is not None and "sensitivity" in res.tables:
            from mdpl.calibrate.sensitivity import agreement, ensemble_first_order
            from mdpl.calibrate.targets import target_basis

            lsm = ensemble_first_order(store, feats, train, basis=target_basis(cfg))
            res.tables["sensitivity_lsm"] = lsm
            res.tables["sensitivity_agreement"] = agreement(res.tables["sensitivity"], lsm)
    elif source == "direct":
        res = calibrate_direct(model, datasets, feats, cfg, train_masks=train, priors=priors, progress=progress)
    elif source == "classical":
        res = calibrate_classical(model, datasets, feats, cfg, train_masks=train, priors=priors, progress=progress)
    else:  # pragma: no cover - guarded by the caller
        raise ConfigError(f"unknown parameter source {source!r}")
    res.save(d)
    _mark_done(d, fp)
    return res


def _refine(source, kind, res, cfg: Config, *, model, datasets, feats, train, priors, store, surrogates, refined_dir: Path,
            device, progress: bool):
    """``cfg.calibration.refine_rounds`` rounds of :func:`mdpl.calibrate.refine.refine_round`, each followed by a
    fresh calibration with the refined surrogate; the last surrogate replaces ``surrogates[kind]``."""
    import shutil

    from mdpl.calibrate.refine import refine_round
    from mdpl.calibrate.surrogate_route import calibrate_mdpl

    if refined_dir.exists():  # runs around other parameters: never resumed
        shutil.rmtree(refined_dir)
    e = cfg.ensemble
    ens_kw = dict(batch_size=e.batch_size, min_measured_fraction=cfg.data.min_measured_fraction, span=e.span,
                  max_pad_days=e.max_pad_days)
    c = cfg.calibration
    for k in range(int(c.refine_rounds)):
        _log(progress, f"refinement round {k + 1} of {c.refine_rounds} for {source}: {c.refine_members} runs per site")
        store, sur = refine_round(store, datasets, model, res.params, surrogate_config(cfg), refined_dir / f"round{k + 1}",
                                  kind=kind, n_members=c.refine_members, spread=c.refine_spread, seed=cfg.seed + k,
                                  ensemble_kw=ens_kw, device=device, progress=progress)
        sur.freeze()
        res = calibrate_mdpl(sur, feats, cfg, train_masks=train, priors=priors, source=source, progress=progress)
    sur.save(refined_dir / "surrogate")
    surrogates[kind] = sur
    res.info["refine_rounds"] = int(c.refine_rounds)
    res.info["refine_members_per_site"] = int(c.refine_members)
    return res


def _generator_params(res: CalibrationResult) -> np.ndarray:
    """The parameters a route itself produced (before any land-model check replaced them)."""
    raw = res.info.get("generator_params")
    if not raw:
        return res.params
    return np.array([[raw[s][n] for n in res.param_names] for s in res.sites], dtype=float)


def _candidate_params(cfg: Config, calibrations: dict[str, CalibrationResult]) -> dict[str, np.ndarray]:
    """Generator checkpoints to check on the land model (``calibration.select: land_model``): key -> (n_sites, P)."""
    from mdpl.calibrate.selection import candidate_key

    if cfg.calibration.select != "land_model":
        return {}
    return {candidate_key(src, e): p for src, res in calibrations.items() if _route(src) in KIND_OF
            for e, p in sorted(res.candidates.items())}


def _select(cfg: Config, calibrations, feats, sims, split, default_params, out: Path) -> list[dict]:
    """Apply the land-model check to every generator route with candidates; the chosen series replace the route's."""
    from mdpl.calibrate.selection import candidate_key, select_candidates
    from mdpl.calibrate.surrogate_route import calibration_tasks
    from mdpl.calibrate.targets import target_basis

    rows = []
    if cfg.calibration.select != "land_model":
        return rows
    for src, res in calibrations.items():
        raw = _generator_params(res)
        candidates = res.candidates
        if _route(src) not in KIND_OF:  # direct, classical: their own result against the defaults
            candidates = {-1: raw}
            for sim in sims:
                sim[candidate_key(src, -1)] = sim[src]
        if not candidates:
            continue
        chosen, sel, notes = select_candidates(feats, sims, split, src, candidates, default_params,
                                               calibration_tasks(cfg), target_basis(cfg))
        for i, r in enumerate(sel):
            key = "default" if r["chosen"] == "default" else candidate_key(src, int(r["chosen"]))
            sims[i][src] = sims[i][key]
        res.info["generator_params"] = {s: dict(zip(res.param_names, map(float, row))) for s, row in zip(res.sites, raw)}
        res.info["selection"] = sel
        res.info["land_model_checks_per_site"] = len(candidates) + 1
        res.notes = [n for n in res.notes if "checkpoint beat the PFT defaults" not in n] + notes
        res.params = chosen
        res.save(out / "calibration" / src)
        rows += sel
    return rows


def gap_warnings(gap: list[dict], feats, threshold: float, tasks=("Qle", "Qh")) -> list[str]:
    """A message for every site and calibrated flux (``tasks``) where the surrogate strays from the land model at
    the calibrated parameters by more than ``threshold`` x the observed daily standard deviation (the calibration
    then optimised the surrogate's error, not the model). Uncalibrated fluxes are in surrogate_gap.json only."""
    std = {}
    for f in feats:
        for k, v in f.obs.items():
            m = np.asarray(f.obs_mask.get(k, np.isfinite(v)), bool)
            if m.sum() > 1:
                std[(str(f.site), k)] = float(np.std(np.asarray(v, float)[m]))
    out = []
    for r in gap:
        if r["flux"] not in tasks:
            continue
        sd = std.get((r["site"], r["flux"]))
        if sd and np.isfinite(r.get("rmse", np.nan)) and r["rmse"] > threshold * sd:
            out.append(f"site {r['site']}, {r['source']}: the {r['surrogate']} surrogate is {r['rmse']:.3g} "
                       f"(RMSE) from the land model for {r['flux']} at the calibrated parameters, "
                       f"{r['rmse'] / sd:.2f} x the observed std (threshold {threshold:g}); "
                       "the calibration may exploit surrogate error")
    return out


def _default_params(model, feats) -> np.ndarray:
    from mdpl.calibrate.inputs import default_priors

    return default_priors(model.parameter_space, feats)


def _series_dataset(f, sims: dict[str, pd.DataFrame], split):
    import xarray as xr

    ds = xr.Dataset(coords={"day": pd.DatetimeIndex(f.days)})
    for k in ("Qle", "Qh", "NEE", "Qle_cor", "Qh_cor"):
        if k in f.obs:
            ds[f"obs_{k}"] = ("day", np.asarray(f.obs[k], float))
            ds[f"obs_{k}_measured"] = ("day", np.asarray(f.obs_mask[k], np.int8))
    for src, df in sims.items():
        for col in df.columns:
            ds[f"sim_{src}_{col}"] = ("day", df[col].reindex(f.days).to_numpy(float))
    ds["train"] = ("day", np.asarray(split[0], np.int8))
    ds["test"] = ("day", np.asarray(split[1], np.int8))
    ds.attrs.update(site=str(f.site), igbp=str(f.igbp), pft_group=str(f.pft_group),
                    units="Qle, Qh: W m-2; NEE: umol m-2 s-1 (daily means)")
    return ds


def _surrogate_gap(surrogates, calibrations, feats, series) -> list[dict]:
    """Daily RMSE/R between each surrogate and the land model at that surrogate's calibrated parameters."""
    import torch

    from mdpl.evaluate.metrics import all_metrics

    rows = []
    for src, kind in KIND_OF.items():
        if src not in calibrations or kind not in surrogates:
            continue
        sur, res = surrogates[kind], calibrations[src]
        for i, f in enumerate(feats):
            with torch.no_grad():
                pred = sur.predict(f, torch.as_tensor(res.params[i : i + 1], dtype=torch.float64))
            lsm = series[str(f.site)][src]
            for t in sur.tasks:
                if t not in lsm:
                    continue
                s = pred[t][0].detach().cpu().numpy().astype(float)
                m = all_metrics(lsm[t].reindex(f.days).to_numpy(float), s)
                rows.append({"site": str(f.site), "source": src, "surrogate": kind, "flux": t, **m})
    return rows


def non_finite_runs(series: dict[str, dict[str, pd.DataFrame]]) -> list[str]:
    """Messages for every (site, source, flux) whose land-model run has non-finite daily values."""
    out = []
    for site, sims in series.items():
        for src, df in sims.items():
            for flux in df.columns:
                n = int((~np.isfinite(df[flux].to_numpy(float))).sum())
                if n:
                    out.append(f"site {site}, parameters {src}: the land model returned non-finite {flux} on {n} of {len(df)} days")
    return out


def write_parameters_csv(calibrations: dict[str, CalibrationResult], default: CalibrationResult, path: Path) -> Path:
    """parameters.csv: site, source, one column per parameter named ``name [units]``."""
    frames = [default.frame()] + [c.frame() for c in calibrations.values()]
    df = pd.concat(frames, ignore_index=True)
    units = dict(zip(default.param_names, default.param_units))
    df = df.rename(columns={n: f"{n} [{u}]" for n, u in units.items()})
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))
    return path


def _seeded_calibrations(cfg: Config, sources, store, need_kinds, *, model, datasets, feats, split, out: Path, device,
                         progress: bool, sur_fp: str, cal_fp: str, timings: dict) -> dict[str, CalibrationResult]:
    """``calibration.seeds - 1`` more surrogates and generators per surrogate route (seeds seed+1, ...), on the
    same ensemble: the spread over seeds of the parameters and the skill. Keys: f"{route}{SEED_SEP}{k}"."""
    import copy

    out_cals: dict[str, CalibrationResult] = {}
    n = int(getattr(cfg.calibration, "seeds", 1))
    routes = [s for s in sources if s in KIND_OF]
    if n <= 1 or not routes or store is None:
        return out_cals
    for k in range(1, n):
        cfg_k = copy.deepcopy(cfg)
        cfg_k.seed = int(cfg.seed) + k
        t = time.perf_counter()
        surs = {}
        for kind in dict.fromkeys(KIND_OF[r] for r in routes):
            _log(progress, f"surrogate: {kind}, seed {cfg_k.seed}")
            surs[kind] = _surrogate(cfg_k, store, kind, out, device, progress, _fingerprint(sur_fp, kind, k),
                                    name=f"{kind}{SEED_SEP}{k}")
            surs[kind].freeze()
        for r in routes:
            name = f"{r}{SEED_SEP}{k}"
            _log(progress, f"calibration: {r}, seed {cfg_k.seed}")
            out_cals[name] = _calibrate(r, cfg_k, model=model, datasets=datasets, feats=feats, split=split,
                                        surrogates=surs, out=out, fp=_fingerprint(cal_fp, r, k), progress=progress,
                                        store=store, device=device, name=name)
        timings[f"seed_{k}_s"] = time.perf_counter() - t
    return out_cals


def _write_seed_records(eval_dir: Path, cfg: Config, records: list[dict], seeded_records: list[dict],
                        calibrations: dict, seeded: dict) -> None:
    """evaluation/seeds.json: the surrogate routes' records and parameters for every seed (seed 0 = the headline)."""
    rows = [{**r, "seed": int(cfg.seed)} for r in records if r["source"] in KIND_OF or r["source"] == "default"]
    for r in seeded_records:
        name = r["source"]
        if name == "default":
            continue
        rows.append({**r, "source": _route(name), "seed": int(cfg.seed) + int(name.split(SEED_SEP)[1])})
    params = []
    for name, res in {**{k: v for k, v in calibrations.items() if k in KIND_OF}, **seeded}.items():
        seed = int(cfg.seed) + (int(name.split(SEED_SEP)[1]) if SEED_SEP in name else 0)
        params += [{"site": s, "source": _route(name), "seed": seed, **dict(zip(res.param_names, map(float, p)))}
                   for s, p in zip(res.sites, res.params)]
    atomic_write_text(eval_dir / "seeds.json", json.dumps({"records": rows, "parameters": params}, indent=1))


# -- the study ------------------------------------------------------------------------------
def run_study(cfg: Config, out_dir, *, progress: bool = True, datasets=None, model=None, device=None,
              check_verdicts: bool | None = None) -> StudyResult:
    """Run (or resume) the whole study into ``out_dir`` and return it loaded.

    ``datasets``/``model`` override the configured sites and the embedded
    land model (tests, other models); ``device`` overrides ``cfg.device``.
    Sources come from ``cfg.calibration.sources``. ``check_verdicts`` (default:
    when the sites are the configured ones, not ``datasets``): refuse, before
    any work, sites without measured calibration and held-out days, and warn
    in ``study.json`` about held-out scores that come out missing; the twin
    experiment, which scores against the truth over whole records, passes
    its own datasets and is exempt.
    """
    import torch

    from mdpl.device import resolve_device

    from mdpl.config import default_data_dir
    from mdpl.io import check_output_dir

    out = check_output_dir(out_dir, option="output directory", data_dirs=[cfg.data.data_dir or default_data_dir()],
                           create=False)
    torch.manual_seed(int(cfg.seed))
    np.random.seed(int(cfg.seed) % (2**32))
    dev = resolve_device(device or cfg.device)
    timings: dict[str, float] = {}
    sources = list(dict.fromkeys(cfg.calibration.sources))
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ConfigError(f"calibration.sources: unknown source(s) {', '.join(bad)}; allowed: {', '.join(SOURCES)}")

    t = time.perf_counter()
    datasets, feats, split, data_source = _sites_and_features(cfg, datasets)
    site_names = [str(f.site) for f in feats]
    timings["sites_s"] = time.perf_counter() - t
    _log(progress, f"{len(feats)} sites ({data_source}): {', '.join(site_names)}")
    if model is None:
        model = make_model(cfg, dev)
    if check_verdicts is None:
        check_verdicts = data_source != "given"
    if check_verdicts:
        check_verdicts_possible(feats, split, cfg)
    fps = stage_fingerprints(cfg, model, datasets, data_source, sources)
    out.mkdir(parents=True, exist_ok=True)  # only now: a run refused above leaves nothing behind
    save_config(cfg, out / "config.yaml")

    surrogates: dict = {}
    fidelity: dict = {}
    store = None
    need_kinds = [KIND_OF[s] for s in sources if s in KIND_OF]
    if need_kinds:
        t = time.perf_counter()
        _log(progress, f"ensemble: {ensemble_members(cfg)} members per site")
        store = _ensemble(cfg, datasets, model, out, progress, fps)
        timings["ensemble_s"] = time.perf_counter() - t
        for kind in need_kinds:
            t = time.perf_counter()
            _log(progress, f"surrogate: {kind}")
            surrogates[kind] = _surrogate(cfg, store, kind, out, dev, progress, fps["surrogate"][kind])
            surrogates[kind].freeze()
            timings[f"surrogate_{kind}_s"] = time.perf_counter() - t
            fidelity[kind] = _fidelity(surrogates[kind], store, kind, out, fps["surrogate"][kind])

    calibrations: dict[str, CalibrationResult] = {}
    for src in sources:
        if src == "default":
            continue
        t = time.perf_counter()
        _log(progress, f"calibration: {src}")
        calibrations[src] = _calibrate(src, cfg, model=model, datasets=datasets, feats=feats, split=split,
                                       surrogates=surrogates, out=out, fp=fps["calibration"][src], progress=progress,
                                       store=store if need_kinds else None, device=dev)
        timings[f"calibrate_{src}_s"] = time.perf_counter() - t
    sur_fp, cal_fp = _fingerprint(fps["surrogate"]), _fingerprint(fps["calibration"], fps["surrogate"])  # seeded runs
    seeded = _seeded_calibrations(cfg, sources, store, need_kinds, model=model, datasets=datasets, feats=feats,
                                  split=split, out=out, device=dev, progress=progress, sur_fp=sur_fp if need_kinds else "",
                                  cal_fp=cal_fp, timings=timings)

    space = model.parameter_space
    default = CalibrationResult("default", site_names, list(space.names), list(space.units), _default_params(model, feats))
    run_params = {"default": default.params, **{k: _generator_params(v) for k, v in {**calibrations, **seeded}.items()}}
    checks = _candidate_params(cfg, {**calibrations, **seeded})
    eval_dir = out / "evaluation"
    eval_fp = _fingerprint(fps["evaluation"], sources, {k: np.round(np.asarray(v, np.float64), 8).tolist()
                                                        for k, v in {**run_params, **checks}.items()})
    from mdpl.evaluate.native import native_path, write_native

    eval_fp = _fingerprint(eval_fp, "native Qle/Qh kept")  # older evaluations lack the native_<site>.nc files
    cached = [read_json_or_none(eval_dir / n) for n in ("records.json", "surrogate_gap.json")] \
        if _stage_done(eval_dir, eval_fp) else [None, None]
    if all(isinstance(x, dict) for x in cached) and all(
            (eval_dir / f"series_{s}.nc").is_file() for s in site_names):
        records, gap = cached[0]["records"], cached[1]["records"]
    else:
        from mdpl.calibrate.evaluation import run_sources, score_sources

        t = time.perf_counter()
        _log(progress, f"land-model runs: {', '.join(run_params)}"
                       + (f" and {len(checks)} generator checkpoints" if checks else ""))
        native: list = []  # Qle/Qh at every step of the same runs: the PLUMBER2 basis without a second run
        sims = run_sources(model, datasets, {**run_params, **checks}, progress=progress, native=("Qle", "Qh"),
                           native_out=native)
        selection = _select(cfg, {**calibrations, **seeded}, feats, sims, split, default.params, out)
        if native:  # the land-model check's choices, in the step series too
            for r in selection:
                i = site_names.index(r["site"])
                if native[i] and r["chosen"] != "-1":  # -1: direct/classical kept their own result
                    native[i][r["source"]] = native[i]["default" if r["chosen"] == "default"
                                                       else f"{r['source']}{SEL_SEP}{r['chosen']}"]
        seed_sims = [{k: v for k, v in sim.items() if k in seeded or k == "default"} for sim in sims]
        for sim in sims:
            for k in list(sim):
                if k in checks or k in seeded or SEL_SEP in k or (k == "default" and "default" not in sources):
                    del sim[k]
        records = score_sources(feats, sims, split)
        _write_seed_records(eval_dir, cfg, records, score_sources(feats, seed_sims, split) if seeded else [],
                            calibrations, seeded)
        series = {str(f.site): sim for f, sim in zip(feats, sims)}
        for ds, f, kept in zip(datasets, feats, native or [None] * len(feats)):
            if kept:  # a model with daily output only has none
                kept = {k: v for k, v in kept.items() if k in sims[0]}
                write_native(native_path(eval_dir, str(f.site)), ds["time"].values, kept)
        timings["evaluate_s"] = time.perf_counter() - t
        for f, sp in zip(feats, split):
            ds = _series_dataset(f, series[str(f.site)], sp)
            atomic_netcdf(eval_dir / f"series_{f.site}.nc", ds)
        gap = _surrogate_gap(surrogates, calibrations, feats, series)
        from mdpl.calibrate.surrogate_route import calibration_tasks

        bad = non_finite_runs(series) + gap_warnings(gap, feats, cfg.calibration.gap_threshold,
                                                     tuple(calibration_tasks(cfg)))
        for msg in bad:
            _log(True, f"warning: {msg}")
        atomic_write_text(eval_dir / "warnings.json", json.dumps({"warnings": bad}, indent=1))
        atomic_write_text(eval_dir / "selection.json", json.dumps({"records": selection}, indent=1))
        atomic_write_text(eval_dir / "records.json", json.dumps({"records": records}, indent=1))
        atomic_write_text(eval_dir / "surrogate_gap.json", json.dumps({"records": gap}, indent=1))
        _mark_done(eval_dir, eval_fp)

    atomic_write_text(out / "metrics.json", json.dumps({"records": records}, indent=1))
    write_parameters_csv(calibrations, default, out / "parameters.csv")
    verdict = verdict_warnings(records, sources, cfg) if check_verdicts else []
    for msg in verdict:
        _log(True, f"WARNING: {msg}")
    warnings_ = (read_json_or_none(eval_dir / "warnings.json") or {}).get("warnings", []) + verdict
    old = read_json_or_none(out / "study.json")
    tim = {**(old.get("timings", {}) if isinstance(old, dict) else {}), **timings}
    atomic_write_text(out / "study.json", json.dumps({"data_source": data_source, "sites": site_names,
                                                      "sources": sources, "timings": tim,
                                                      "warnings": warnings_}, indent=1))
    return load_study(out)


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

