"""Run the land model over a perturbed parameter ensemble, batch by batch, resumably.

:func:`run_ensemble` samples ``n_members`` parameter sets per site (a
scrambled Sobol or Latin-hypercube design whose seed depends on the run seed
and the site code), runs ``model.simulate`` on each batch of members and
writes every finished batch to the store (:mod:`mdpl.ensemble.store`) at
once, atomically. Running it again with the same settings skips the batches
already on disk, so an interrupted run resumes where it stopped; different
settings on an existing store are refused rather than mixed.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

import mdpl
from mdpl.data.features import site_features, split_periods
from mdpl.ensemble.sampling import SAMPLERS, sample_parameters, site_seed
from mdpl.ensemble.store import (
    ENSEMBLE_FLUXES,
    FLUX_UNITS,
    MANIFEST,
    STORE_FORMAT,
    EnsembleStore,
    batch_file,
    features_file,
    read_manifest,
    remove_temporaries,
    space_to_manifest,
    write_json,
)
from mdpl.errors import ConfigError, DataError, ModelError
from mdpl.ils.batching import MAX_PAD_DAYS, batch_groups, pad_group
from mdpl.io import atomic_netcdf

#: manifest entries that must agree for a run to resume into an existing store
_PLAN_KEYS = ("format", "model", "seed", "sampler", "n_members", "batches", "sites", "parameters", "fluxes",
              "min_measured_fraction", "span", "max_pad_days")


def _model_info(model) -> dict:
    return {
        "name": str(getattr(model, "name", type(model).__name__)),
        "version": str(getattr(model, "version", "unknown")),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
    }


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _daily_fluxes(result, flux: str, days_list: list[pd.DatetimeIndex], sites: list[str], n_members: int) -> list[np.ndarray]:
    """Per site, the (member, day) daily flux of a (possibly multi-site) result, aligned to that site's days.

    The result is site-major (site * n_members + member). Its day labels are
    those of the first site; the other sites of a group start at the same
    time of day, so their k-th simulated day is shifted by the difference of
    the start dates.
    """
    if flux not in result.fluxes:
        raise ModelError(f"site {sites[0]}: the land model returned no {flux} (has {', '.join(result.fluxes)})")
    arr = _to_numpy(result.fluxes[flux])
    if arr.ndim != 2 or arr.shape[0] != len(sites) * n_members:
        raise ModelError(f"sites {', '.join(sites)}: {flux} has shape {arr.shape}, expected "
                         f"({len(sites) * n_members}, days)")
    t = getattr(result, "time", None)
    out = []
    sim0 = pd.DatetimeIndex(np.asarray(t)).floor("D") if t is not None and len(t) == arr.shape[1] else None
    for j, (site, days) in enumerate(zip(sites, days_list)):
        a = arr[j * n_members : (j + 1) * n_members]
        if sim0 is not None:
            sim_days = sim0 + (days[0] - days_list[0][0])
            pos = sim_days.get_indexer(days)
            if np.any(pos < 0):
                raise ModelError(f"site {site}: the land model's days do not cover the forcing's "
                                 f"{days[0].date()}..{days[-1].date()}")
            a = a[:, pos]
        elif a.shape[1] != len(days):
            raise ModelError(f"site {site}: {flux} has {a.shape[1]} days, the forcing {len(days)}")
        out.append(a)
    return out


def training_span(ds: xr.Dataset) -> xr.Dataset:
    """The part of a site a calibration fits to: everything before the held-out last year.

    Where :func:`mdpl.data.features.split_periods` holds out the last calendar
    year, the ensemble only needs the years before it (the held-out year is
    scored with the land model itself), which halves the cost of the ensemble
    for two-year sites. Sites split into week blocks are returned whole.
    """
    f = site_features(ds)
    train, test = split_periods(f.days)
    if not test.any() or not np.all(np.diff(test.astype(int)) >= 0):  # week blocks: keep everything
        return ds
    first_test = f.days[np.argmax(test)]
    return ds.sel(time=slice(None, first_test - pd.Timedelta(1, "ns")))


def _check_resumable(store_dir: Path, manifest: dict) -> None:
    old = read_manifest(store_dir)
    same_model = lambda m: {k: v for k, v in (m or {}).items() if k != "class"}  # name + version decide
    diff = [k for k in _PLAN_KEYS if (old.get(k) != manifest.get(k) if k != "model" else
                                      same_model(old.get(k)) != same_model(manifest.get(k)))]
    if diff:
        raise ConfigError(
            f"{store_dir}: an ensemble with different settings is already there (differs in {', '.join(diff)}); "
            "choose another directory or delete it"
        )


def run_ensemble(
    sites: list[xr.Dataset],
    model,
    space,
    n_members: int,
    store_dir,
    *,
    batch_size: int = 256,
    seed: int = 0,
    method: str = "sobol",
    min_measured_fraction: float = 0.75,
    group_sites: bool = True,
    span: str = "all",
    max_pad_days: float = MAX_PAD_DAYS,
    progress: bool = True,
    thetas: np.ndarray | None = None,
) -> EnsembleStore:
    """Run (or resume) the ensemble into ``store_dir`` and return it opened.

    ``sites``: canonical site Datasets; ``model``: anything with
    ``simulate(ds, params (n, P), daily=True)`` returning an object with
    ``.fluxes[name]`` (n, days) and ``.time``; ``space``: the
    :class:`mdpl.ils.ParameterSpace` to sample (``n_members`` sets per site,
    drawn by ``method``, 'sobol' or 'lhs'). With ``group_sites`` the sites
    that share step length, start time of day and spin-up window and whose
    records differ by at most ``max_pad_days`` days run in one call
    (``simulate([ds, ...], params (n_sites, n, P))``, shorter records padded
    at their end, :mod:`mdpl.ils.batching`): the embedded model's cost is
    nearly independent of the batch size, so this is what makes an ensemble
    affordable on a CPU, and each site's series are those it gets alone.
    ``span='train'`` runs each site only over its calibration period
    (:func:`training_span`: the years before a held-out last year), ``'all'``
    over the whole record. ``thetas``
    (site, member, P), physical, runs those parameter sets instead of
    sampling (``method`` is then recorded as 'given').
    """
    if method not in SAMPLERS and thetas is None:
        raise ConfigError(f"ensemble sampler must be one of {', '.join(SAMPLERS)}, got {method!r}")
    if n_members < 1 or batch_size < 1:
        raise ConfigError(f"ensemble needs n_members >= 1 and batch_size >= 1, got {n_members}, {batch_size}")
    if not sites:
        raise DataError("run_ensemble: no sites given")
    if span not in ("all", "train"):
        raise ConfigError(f"ensemble span must be 'all' or 'train', got {span!r}")
    if span == "train":
        sites = [training_span(ds) for ds in sites]
    groups = batch_groups(sites, max_pad_days) if group_sites else [[i] for i in range(len(sites))]
    store_dir = Path(store_dir)
    feats = [site_features(ds, min_measured_fraction) for ds in sites]
    names = [f.site for f in feats]
    if len(set(names)) != len(names):
        raise DataError(f"run_ensemble: duplicate site codes in {names}")
    if thetas is not None:
        thetas = np.asarray(thetas, dtype=float)
        if thetas.shape != (len(sites), n_members, len(space.names)):
            raise ConfigError(f"run_ensemble: thetas must have shape (sites, members, parameters) = "
                              f"{(len(sites), n_members, len(space.names))}, got {thetas.shape}")
        method = "given"
    batches = [[m0, min(m0 + batch_size, n_members)] for m0 in range(0, n_members, batch_size)]
    manifest = {
        "format": STORE_FORMAT,
        "model": _model_info(model),
        "mdpl_version": mdpl.__version__,
        "seed": int(seed),
        "sampler": method,
        "n_members": int(n_members),
        "batch_size": int(batch_size),
        "batches": batches,
        "sites": [
            {"site": f.site, "igbp": f.igbp, "pft_group": f.pft_group, "n_days": f.n_days,
             "start": str(f.days[0].date()), "end": str(f.days[-1].date()), "source": str(f.attrs.get("source", ""))}
            for f in feats
        ],
        "parameters": space_to_manifest(space),
        "fluxes": list(ENSEMBLE_FLUXES),
        "min_measured_fraction": float(min_measured_fraction),
        "span": span,
        "max_pad_days": float(max_pad_days),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if (store_dir / MANIFEST).is_file():
        _check_resumable(store_dir, manifest)
        remove_temporaries(store_dir)
    else:
        store_dir.mkdir(parents=True, exist_ok=True)
        write_json(store_dir / MANIFEST, manifest)

    for f in feats:
        if not features_file(store_dir, f.site).is_file():
            atomic_netcdf(features_file(store_dir, f.site), f.to_dataset())
    if thetas is None:
        thetas = [sample_parameters(space, n_members, method, site_seed(seed, f.site)) for f in feats]
    todo = {(i, b) for i in range(len(sites)) for b in range(len(batches)) if not batch_file(store_dir, names[i], b).is_file()}
    total = len(sites) * len(batches)
    bar = tqdm(total=total, initial=total - len(todo), desc="ensemble", unit="site-batch", disable=not progress)
    for group in groups:
        padded = dict(zip(group, pad_group([sites[i] for i in group])))
        for b, (m0, m1) in enumerate(batches):
            run = [i for i in group if (i, b) in todo]
            if not run:
                continue
            bar.set_postfix_str(f"{', '.join(names[i] for i in run)}: members {m0}-{m1 - 1}")
            if len(run) == 1:
                result = model.simulate(sites[run[0]], thetas[run[0]][m0:m1], daily=True)
            else:
                result = model.simulate([padded[i] for i in run], np.stack([thetas[i][m0:m1] for i in run]), daily=True)
            per_flux = {flux: _daily_fluxes(result, flux, [feats[i].days for i in run], [names[i] for i in run], m1 - m0)
                        for flux in ENSEMBLE_FLUXES}
            for j, i in enumerate(run):
                f = feats[i]
                data = {"params": (("member", "param"), thetas[i][m0:m1])}
                for flux in ENSEMBLE_FLUXES:
                    data[flux] = (("member", "day"), per_flux[flux][j].astype(np.float32), {"units": FLUX_UNITS[flux]})
                out = xr.Dataset(
                    data,
                    coords={"member": np.arange(m0, m1), "param": list(space.names), "day": f.days.values},
                    attrs={"site": f.site, "batch": b, "model": manifest["model"]["name"],
                           "model_version": manifest["model"]["version"], "seed": int(seed)},
                )
                atomic_netcdf(batch_file(store_dir, f.site, b), out)
                bar.update(1)
    bar.close()
    return EnsembleStore.open(store_dir)
