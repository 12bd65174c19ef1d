"""The stages of a study, each run or reused from its cache: ensemble, surrogate, fidelity, calibration, evaluation.

Each stage function writes its result under the study's ``out`` directory
atomically with the fingerprint of what it read (:mod:`mdpl.cache`), and
returns the cached result instead when that fingerprint is already recorded
there; a damaged cache file is recomputed, never read. :func:`mdpl.study.run_study`
calls them in order.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.cache import fingerprint, mark_done, stage_done
from mdpl.calibrate.gaps import gap_warnings, surrogate_gap
from mdpl.calibrate.result import CalibrationResult
from mdpl.calibrate.seeds import seed_table
from mdpl.calibrate.selection import Checkpoint, checkpoint_params, select_on_land_model
from mdpl.calibrate.sources import KIND_OF
from mdpl.calibrate.verdicts import non_finite_runs
from mdpl.config import Config, ensemble_members, surrogate_config
from mdpl.errors import ConfigError
from mdpl.io import atomic_netcdf, atomic_write_text, read_json_or_none


def log(progress: bool, msg: str) -> None:
    """One progress line of the study (``progress=False``: silent)."""
    if progress:
        print(f"[mdpl study] {msg}", flush=True)


# -- ensemble -------------------------------------------------------------------------------
def prepare_ensemble_dir(store_dir: Path, fps: dict, progress: bool) -> None:
    """Make ``store_dir`` hold only ensemble files that are valid for this run's inputs.

    ``inputs.json`` records, per site, the fingerprint of what its runs read
    (forcing, land model, plan) and of its features (forcing and
    observations). A site whose runs' inputs changed loses its batches, one
    whose observations alone changed only its features file; damaged files
    are removed; a different site list or a store without the record starts
    afresh. The runner then computes exactly what is missing.
    """
    from mdpl.ensemble.store import MANIFEST, batch_glob, features_file, remove_damaged

    stamp = store_dir / "inputs.json"
    old = read_json_or_none(stamp)
    runs, feats = fps["ensemble_sites"], fps["features"]
    if (store_dir / MANIFEST).is_file():
        if not isinstance(old, dict) or list(old.get("sites", {})) != list(runs) or not isinstance(old.get("features"), dict):
            log(progress, "ensemble: inputs changed or unrecorded; recomputing it")
            shutil.rmtree(store_dir)
        else:
            for s in runs:
                if old["sites"].get(s) != runs[s]:
                    log(progress, f"ensemble: inputs of {s} changed; recomputing its runs")
                    for f in batch_glob(store_dir, s):
                        f.unlink()
                    features_file(store_dir, s).unlink(missing_ok=True)
                elif old["features"].get(s) != feats[s]:
                    features_file(store_dir, s).unlink(missing_ok=True)
            for f in remove_damaged(store_dir):
                log(True, f"warning: damaged ensemble file {f} removed; recomputing it")
    store_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps({"sites": runs, "features": feats}, indent=1))


def ensemble_stage(cfg: Config, datasets, model, out: Path, progress: bool, fps: dict):
    """The perturbed parameter ensemble under ``out/ensemble`` (only what is missing or invalid is run)."""
    from mdpl.ensemble.runner import run_ensemble

    store_dir = out / "ensemble"
    prepare_ensemble_dir(store_dir, fps, progress)

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
        log(progress, "ensemble: plan changed; recomputing it")
        shutil.rmtree(store_dir)
        prepare_ensemble_dir(store_dir, fps, progress)
        return run()


# -- surrogates -----------------------------------------------------------------------------
def surrogate_stage(cfg: Config, store, kind: str, out: Path, device, progress: bool, fp: str, name: str | None = None):
    """A ``kind`` surrogate trained on the ensemble (cached under ``out/surrogates/{name or kind}``)."""
    from mdpl.calibrate.surrogate_training import train_surrogate
    from mdpl.calibrate.trained_surrogate import TrainedSurrogate

    d = out / "surrogates" / (name or kind)
    if stage_done(d, fp):
        try:
            return TrainedSurrogate.load(d, device=device)
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint is recomputed, not fatal
            log(True, f"warning: {d}: damaged surrogate ({type(e).__name__}); retraining it")
    sur = train_surrogate(store, surrogate_config(cfg), kind=kind, device=device, seed=cfg.seed, progress=progress)
    sur.save(d)
    mark_done(d, fp)
    return sur


def fidelity_stage(sur, store, kind: str, out: Path, fp: str) -> dict:
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


# -- calibrations ---------------------------------------------------------------------------
def default_params(model, feats) -> np.ndarray:
    """The PFT default parameters of every site (n_sites, P): the priors and the baseline source."""
    from mdpl.calibrate.inputs import default_priors

    return default_priors(model.parameter_space, feats)


def calibration_stage(source: str, cfg: Config, *, model, datasets, feats, split, surrogates, out: Path, fp: str,
                      progress: bool, store=None, device="cpu", name: str | None = None) -> CalibrationResult:
    """One parameter source's calibration (cached under ``out/calibration/{name or source}``).

    MdPL/dPL train through ``surrogates`` (a refined surrogate replaces its
    entry); with an ensemble store they also get the land model's own
    first-order sensitivities beside the surrogate's screen.
    """
    from mdpl.calibrate.classical import calibrate_classical
    from mdpl.calibrate.direct import calibrate_direct
    from mdpl.calibrate.surrogate_route import calibrate_mdpl
    from mdpl.calibrate.trained_surrogate import TrainedSurrogate

    d = out / "calibration" / (name or source)
    refined_dir = out / "refine" / (name or source)
    if CalibrationResult.exists(d) and stage_done(d, fp):
        if source in KIND_OF and (refined_dir / "surrogate").is_dir():  # the gap report needs the refined surrogate
            surrogates[KIND_OF[source]] = TrainedSurrogate.load(refined_dir / "surrogate", device=device)
            surrogates[KIND_OF[source]].freeze()
        return CalibrationResult.load(d)
    train = [s[0] for s in split]
    priors = default_params(model, feats)
    allowed, ridges = _ridge_holds(cfg, model, feats, train, store)
    if source in KIND_OF:
        kind = KIND_OF[source]
        res = calibrate_mdpl(surrogates[kind], feats, cfg, train_masks=train, priors=priors, source=source,
                             allowed=allowed, progress=progress)
        rounds = int(cfg.calibration.refine_rounds)
        if rounds and store is not None:
            res = _refine(source, kind, res, cfg, model=model, datasets=datasets, feats=feats, train=train,
                          priors=priors, store=store, surrogates=surrogates, refined_dir=refined_dir, device=device,
                          allowed=allowed, progress=progress)
        if store is not None and "sensitivity" in res.tables:
            from mdpl.calibrate.sensitivity import agreement, ensemble_first_order
            from mdpl.calibrate.targets import target_basis

            lsm = ensemble_first_order(store, feats, train, basis=target_basis(cfg))
            res.tables["sensitivity_lsm"] = lsm
            res.tables["sensitivity_agreement"] = agreement(res.tables["sensitivity"], lsm)
    elif source == "direct":
        res = calibrate_direct(model, datasets, feats, cfg, train_masks=train, priors=priors, allowed=allowed,
                               progress=progress)
    elif source == "classical":
        res = calibrate_classical(model, datasets, feats, cfg, train_masks=train, priors=priors, allowed=allowed,
                                  progress=progress)
    else:  # pragma: no cover - guarded by the caller
        raise ConfigError(f"unknown parameter source {source!r}")
    if ridges is not None:
        res.tables["ridges"] = ridges
    res.save(d)
    mark_done(d, fp)
    return res


def _ridge_holds(cfg: Config, model, feats, train, store):
    """(allowed (n_sites, P) bool or None, ridge table or None): with ``calibration.ridge_hold`` and an ensemble,
    the parameters :func:`mdpl.calibrate.identifiability.ridge_holds` lets move; the same for every route."""
    if not getattr(cfg.calibration, "ridge_hold", False) or store is None:
        return None, None
    from mdpl.calibrate.identifiability import ridge_holds
    from mdpl.calibrate.sensitivity import structural_free
    from mdpl.calibrate.surrogate_route import calibration_tasks
    from mdpl.calibrate.targets import target_basis

    tasks = list(calibration_tasks(cfg))
    space = model.parameter_space
    base = structural_free(space, [str(f.site) for f in feats], tasks)
    c = cfg.calibration
    return ridge_holds(store, feats, train, tasks, base, basis=target_basis(cfg), cosine=c.ridge_cosine,
                       moves=c.ridge_moves, dominance=c.ridge_dominance)


def _refine(source, kind, res, cfg: Config, *, model, datasets, feats, train, priors, store, surrogates, refined_dir: Path,
            device, progress: bool, allowed=None):
    """``cfg.calibration.refine_rounds`` rounds of :func:`mdpl.calibrate.refine.refine_round`, each followed by a
    fresh calibration with the refined surrogate; the last surrogate replaces ``surrogates[kind]``."""
    from mdpl.calibrate.refine import refine_round
    from mdpl.calibrate.surrogate_route import calibrate_mdpl

    if refined_dir.exists():  # runs around other parameters: never resumed
        shutil.rmtree(refined_dir)
    e = cfg.ensemble
    ens_kw = dict(batch_size=e.batch_size, min_measured_fraction=cfg.data.min_measured_fraction, span=e.span,
                  max_pad_days=e.max_pad_days)
    c = cfg.calibration
    for k in range(int(c.refine_rounds)):
        log(progress, f"refinement round {k + 1} of {c.refine_rounds} for {source}: {c.refine_members} runs per site")
        store, sur = refine_round(store, datasets, model, res.params, surrogate_config(cfg), refined_dir / f"round{k + 1}",
                                  kind=kind, n_members=c.refine_members, spread=c.refine_spread, seed=cfg.seed + k,
                                  ensemble_kw=ens_kw, device=device, progress=progress)
        sur.freeze()
        res = calibrate_mdpl(sur, feats, cfg, train_masks=train, priors=priors, source=source, allowed=allowed,
                             progress=progress)
    sur.save(refined_dir / "surrogate")
    surrogates[kind] = sur
    res.info["refine_rounds"] = int(c.refine_rounds)
    res.info["refine_members_per_site"] = int(c.refine_members)
    return res


# -- evaluation -----------------------------------------------------------------------------
def evaluation_stage(cfg: Config, *, model, datasets, feats, split, sources, calibrations: dict, seeded: dict,
                     surrogates: dict, run_params: dict, out: Path, fp: str, progress: bool, timings: dict) -> list[dict]:
    """Run the land model with every parameter source (and the generator checkpoints to check), score it.

    ``run_params``: source -> (n_sites, P), the defaults and what each route
    produced; ``calibrations``/``seeded``: the headline and the extra-seed
    results. The land-model check (:func:`mdpl.calibrate.selection.select_on_land_model`)
    picks each route's parameters from the same runs; the chosen results are
    saved again. Writes ``out/evaluation/`` (records, series, native steps,
    selection, surrogate gap, seeds, warnings) and returns the metric records.
    """
    from mdpl.calibrate.evaluation import run_sources, score_sources
    from mdpl.calibrate.surrogate_route import calibration_tasks
    from mdpl.evaluate.native import native_path, write_native

    routes = {**calibrations, **seeded}
    checks = checkpoint_params(cfg, routes)
    eval_dir = out / "evaluation"
    eval_fp = fingerprint(fp, sources, {str(k): np.round(np.asarray(v, np.float64), 8).tolist()
                                        for k, v in {**run_params, **checks}.items()})
    eval_fp = fingerprint(eval_fp, "native Qle/Qh kept")  # older evaluations lack the native_<site>.nc files
    cached = [read_json_or_none(eval_dir / n) for n in ("records.json", "surrogate_gap.json")] \
        if stage_done(eval_dir, eval_fp) else [None, None]
    if all(isinstance(x, dict) for x in cached) and all(
            (eval_dir / f"series_{f.site}.nc").is_file() for f in feats):
        return cached[0]["records"]

    t = time.perf_counter()
    log(progress, f"land-model runs: {', '.join(run_params)}" + (f" and {len(checks)} generator checkpoints" if checks else ""))
    native: list = []  # Qle/Qh at every step of the same runs: the PLUMBER2 basis without a second run
    sims = run_sources(model, datasets, {**run_params, **checks}, progress=progress, native=("Qle", "Qh"),
                       native_out=native)
    selection = select_on_land_model(cfg, routes, feats, sims, split, run_params["default"])
    selection.apply(sims)
    selection.apply(native)  # the land-model check's choices, in the step series too
    for src in selection.updated:
        routes[src].save(out / "calibration" / src)
    seed_sims = [{k: v for k, v in sim.items() if k in seeded or k == "default"} for sim in sims]
    for sim in sims:
        for k in list(sim):
            if isinstance(k, Checkpoint) or k in seeded or (k == "default" and "default" not in sources):
                del sim[k]
    records = score_sources(feats, sims, split)
    seeds = seed_table(cfg.seed, records, score_sources(feats, seed_sims, split) if seeded else [], calibrations, seeded)
    atomic_write_text(eval_dir / "seeds.json", json.dumps(seeds, indent=1))
    series = {str(f.site): sim for f, sim in zip(feats, sims)}
    for ds, f, kept in zip(datasets, feats, native or [None] * len(feats)):
        if kept:  # a model with daily output only has none
            kept = {k: v for k, v in kept.items() if k in sims[0]}
            write_native(native_path(eval_dir, str(f.site)), ds["time"].values, kept)
    timings["evaluate_s"] = time.perf_counter() - t
    for f, sp in zip(feats, split):
        atomic_netcdf(eval_dir / f"series_{f.site}.nc", series_dataset(f, series[str(f.site)], sp))
    gap = surrogate_gap(surrogates, calibrations, feats, series)
    bad = non_finite_runs(series) + gap_warnings(gap, feats, cfg.calibration.gap_threshold, tuple(calibration_tasks(cfg)))
    for msg in bad:
        log(True, f"warning: {msg}")
    atomic_write_text(eval_dir / "warnings.json", json.dumps({"warnings": bad}, indent=1))
    atomic_write_text(eval_dir / "selection.json", json.dumps({"records": selection.rows}, indent=1))
    atomic_write_text(eval_dir / "records.json", json.dumps({"records": records}, indent=1))
    atomic_write_text(eval_dir / "surrogate_gap.json", json.dumps({"records": gap}, indent=1))
    mark_done(eval_dir, eval_fp)
    return records


def series_dataset(f, sims: dict[str, pd.DataFrame], split):
    """One site's daily series (observations with their measured masks, every source's simulation, the split)."""
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
