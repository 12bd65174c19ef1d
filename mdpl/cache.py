"""What each stage of a study read, as fingerprints, and the stamps that record a finished stage.

:func:`stage_fingerprints` hashes, per stage, exactly what it reads: the
content of the site data (values, time axis, attributes including the files'
paths, so the resolved data directory too), the configuration sections it
uses, the fingerprints of the stages upstream, and the package version and
source of the code it runs (:func:`code_fingerprint`). A stage directory whose
``stage.json`` records the same fingerprint is reused (:func:`stage_done`);
anything else (missing, empty, damaged, different) is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from mdpl.calibrate.sources import KIND_OF
from mdpl.config import Config, config_to_dict, default_data_dir, ensemble_members, surrogate_config
from mdpl.io import atomic_write_text, read_json_or_none


def fingerprint(*parts) -> str:
    """A short hash of JSON-able ``parts`` (anything else by its ``str``)."""
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


#: the modules (besides sub-packages) that orchestrate and run the stages: their code counts for every stage
_ORCHESTRATION = ("study.py", "stages.py", "cache.py")


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
    for MdPL/dPL, the surrogate; ``evaluation`` is completed by the
    evaluation stage with the parameters it scores. Every part carries the
    code of the packages it runs.
    """
    c = config_to_dict(cfg)
    sites = [str(ds.attrs.get("site")) for ds in datasets]
    forcing = {s: dataset_fingerprint(ds, "forcing") for s, ds in zip(sites, datasets)}
    obs = {s: dataset_fingerprint(ds, "obs") for s, ds in zip(sites, datasets)}
    data_dir = cfg.data.data_dir or default_data_dir()
    resolved = str(Path(data_dir).resolve()) if data_source == "real" and data_dir else data_source
    model_id = [getattr(model, "name", type(model).__name__), str(getattr(model, "version", ""))]
    lsm = fingerprint(c["lsm"], model_id, code_fingerprint("ils"))
    plan = fingerprint(resolved, lsm, c["seed"], c["mode"], ensemble_members(cfg), c["ensemble"],
                       c["data"]["min_measured_fraction"], sites, code_fingerprint("ensemble", "data"))
    ens_sites = {s: fingerprint(plan, forcing[s]) for s in sites}
    features = {s: fingerprint(forcing[s], obs[s], c["data"]["min_measured_fraction"], code_fingerprint("data"))
                for s in sites}
    ensemble = fingerprint(ens_sites)
    sur_cfg = dataclasses.asdict(surrogate_config(cfg))
    surrogate = {kind: fingerprint(ensemble, sur_cfg, kind, c["seed"], code_fingerprint("models", "calibrate"))
                 for kind in ("multitask", "singletask")}
    data = fingerprint(resolved, forcing, obs, c["data"], code_fingerprint("data"))
    cal_base = fingerprint(data, lsm, c["seed"], c["mode"], c["calibration"],
                           code_fingerprint("calibrate", "models", *_ORCHESTRATION))
    calibration = {}
    for src in sources:
        if src in KIND_OF:  # refinement rounds run the land model and retrain: the ensemble plan counts too
            calibration[src] = fingerprint(cal_base, src, surrogate[KIND_OF[src]], plan)
        else:
            calibration[src] = fingerprint(cal_base, src, surrogate)  # the parameter screen may read the surrogate
    evaluation = fingerprint(data, lsm, code_fingerprint("calibrate", "evaluate", *_ORCHESTRATION),
                             {s: calibration[s] for s in sources if s in KIND_OF})  # + parameters, when it runs
    return {"ensemble": ensemble, "ensemble_sites": ens_sites, "features": features, "surrogate": surrogate,
            "calibration": calibration, "evaluation": evaluation, "data": data}


def stage_done(directory: Path, fp: str) -> bool:
    """True when ``directory/stage.json`` records ``fp`` (a missing, empty or damaged stamp: recompute)."""
    stamp = read_json_or_none(Path(directory) / "stage.json")
    return isinstance(stamp, dict) and stamp.get("fingerprint") == fp


def mark_done(directory: Path, fp: str, **extra) -> None:
    """Record in ``directory/stage.json`` that the stage with fingerprint ``fp`` finished there."""
    atomic_write_text(Path(directory) / "stage.json", json.dumps({"fingerprint": fp, **extra}, indent=1))
