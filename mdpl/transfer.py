"""Transferability (paper experiment 4): leave one site out within each PFT group.

For every PFT group with at least two sites of a finished study, and every
site ``s`` in it, two generators are trained through the study's frozen
multi-task surrogate on the *other* sites of the group only, over their
training periods:

- ``loso`` (the paper's PFT-set transfer): ``'pft'`` mode, one parameter set
  for the group, used at ``s`` as it is;
- ``loso_own`` (the generator's own-inputs transfer): ``'all'`` mode, one
  generator g(forcing summary, attributes, prior); ``s`` gets g of its *own*
  training-period forcing summary, attributes and PFT defaults
  (:func:`mdpl.calibrate.generator_training.generate`).

The land model is then run at every left-out site with both sets (one
batched call, :func:`mdpl.calibrate.evaluation.evaluate_sources`) and scored
exactly like the study's own sources. Site ``s``'s observations are never
seen. With two sites in a group the generator learns from one site only, so
its inputs are not normalised across sites (a single site has no spread):
``loso_own`` then tells how far g extrapolates, not how well it interpolates.

Results go to ``<study>/transfer/``: ``records.json`` (``{"records": [...]}``,
the study's record format, with ``trained_on``), ``parameters.csv`` (the
transferred parameters per left-out site and source) and
``series_<site>.nc`` (daily land-model fluxes with the transferred
parameters). A rerun with the same study reuses them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.errors import ConfigError

SOURCE = "loso"
#: the generator's own-inputs transfer (``'all'`` mode generator applied to the left-out site's inputs)
OWN_SOURCE = "loso_own"
SOURCES = (SOURCE, OWN_SOURCE)
TRANSFER_DIR = "transfer"
#: bump when the experiment changes, so cached results of an older design are not reused
_DESIGN = "2: loso + loso_own, batched evaluation"


def groups_of(features: dict) -> dict[str, list[str]]:
    """PFT group -> its sites (study order) for groups with at least two sites."""
    groups: dict[str, list[str]] = {}
    for site, f in features.items():
        groups.setdefault(str(f.pft_group), []).append(site)
    return {g: s for g, s in groups.items() if len(s) >= 2}


def _fingerprint(out: Path, cfg, datasets) -> str:
    """Everything the transfer reads: the study's multi-task surrogate and the sites' features in its ensemble
    store (with the store's site list), the generator settings (``cfg.calibration``, seed, the data section,
    device), the sites' data and the code that runs it. Not the study's metrics: the transfer does not read
    them, so it can run as soon as the surrogate is trained (beside the study's other stages)."""
    from mdpl.cache import code_fingerprint, dataset_fingerprint
    from mdpl.config import config_to_dict

    h = hashlib.sha256(_DESIGN.encode())
    for p in sorted((out / "surrogates" / "multitask").glob("*")):
        if p.is_file() and p.suffix in (".json", ".pt"):
            h.update(p.read_bytes())
    store = out / "ensemble"
    for p in [store / "manifest.json", *sorted((store / "features").glob("*.nc"))]:
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    conf = config_to_dict(cfg)
    conf["data"].pop("data_dir", None)  # where the files are: their content is hashed below
    h.update(json.dumps([conf["calibration"], conf["seed"], conf["data"], conf["device"]],
                        sort_keys=True, default=str).encode())
    for ds in sorted(datasets, key=lambda d: str(d.attrs.get("site", ""))):
        h.update(dataset_fingerprint(ds).encode())
    h.update(code_fingerprint("transfer.py", "calibrate", "models", "ils", "evaluate", "data").encode())
    return h.hexdigest()[:16]


def loso_transfer(cfg, out_dir, datasets, *, model=None, progress: bool = False) -> pd.DataFrame:
    """Run (or reuse) the leave-one-site-out experiment of the study in ``out_dir``; return its records.

    ``datasets``: the canonical site Datasets the study ran on (forcing for
    the land model), in any order; only sites in PFT groups of two or more
    are used. ``model`` defaults to the study's land model.
    """
    import xarray as xr

    from mdpl.calibrate.evaluation import evaluate_sources
    from mdpl.calibrate.surrogate_training import TrainedSurrogate
    from mdpl.data.features import split_periods
    from mdpl.device import resolve_device
    from mdpl.ensemble import EnsembleStore
    from mdpl.io import atomic_netcdf, atomic_write_text
    from mdpl.study import make_model

    out = Path(out_dir)
    sur_dir = out / "surrogates" / "multitask"
    if not sur_dir.is_dir():
        raise ConfigError(f"{out}: the study has no multi-task surrogate (calibration.sources lacks 'mdpl')")
    tdir = out / TRANSFER_DIR
    fp = _fingerprint(out, cfg, datasets)
    stamp = tdir / "stage.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fp:
        return pd.DataFrame(json.loads((tdir / "records.json").read_text())["records"])

    store = EnsembleStore.open(out / "ensemble")
    features = {s: store.features[s] for s in store.sites if s in store.features}  # the study's sites, in order
    by_site = {str(ds.attrs["site"]): ds for ds in datasets}
    groups = groups_of(features)
    surrogate = TrainedSurrogate.load(sur_dir).freeze()
    if model is None:
        model = make_model(cfg, resolve_device(cfg.device))
    params_rows, left_sites, thetas, trained_on = [], [], {k: [] for k in SOURCES}, {}
    tdir.mkdir(parents=True, exist_ok=True)
    for group, sites in groups.items():
        for left in sites:
            if left not in by_site:
                raise ConfigError(f"loso_transfer: no dataset given for site {left}")
            others = [features[s] for s in sites if s != left]
            train = [split_periods(f.days)[0] for f in others]
            sets = {
                SOURCE: pft_transfer(surrogate, others, cfg, train, progress=progress),
                OWN_SOURCE: own_inputs_transfer(surrogate, others, features[left], cfg, train, progress=progress),
            }
            left_sites.append(left)
            trained_on[left] = ",".join(s for s in sites if s != left)
            for k, theta in sets.items():
                thetas[k].append(theta)
                params_rows.append({"site": left, "pft_group": group, "source": k, "trained_on": trained_on[left],
                                    **dict(zip(surrogate.space.names, theta))})
    feats = [features[s] for s in left_sites]
    records, series = evaluate_sources(model, [by_site[s] for s in left_sites], feats,
                                       {k: np.stack(v) for k, v in thetas.items()},
                                       [split_periods(f.days) for f in feats], corrected=cfg.data.corrected_fluxes,
                                       progress=progress)
    for r in records:
        r["trained_on"] = trained_on[r["site"]]
    for left in left_sites:
        ds = xr.Dataset({f"sim_{k}_{c}": ("day", df[c].to_numpy(float)) for k, df in series[left].items()
                         for c in df.columns},
                        coords={"day": pd.DatetimeIndex(series[left][SOURCE].index)})
        atomic_netcdf(tdir / f"series_{left}.nc", ds)
    atomic_write_text(tdir / "parameters.csv", pd.DataFrame(params_rows).to_csv(index=False, float_format="%.6g"))
    atomic_write_text(tdir / "records.json", json.dumps({"records": records}, indent=1, default=float))
    atomic_write_text(stamp, json.dumps({"fingerprint": fp, "groups": groups}, indent=1))
    return pd.DataFrame(records)


def pft_transfer(surrogate, others, cfg, train_masks, *, progress: bool = False) -> np.ndarray:
    """The paper's PFT-set transfer: one ``'pft'``-mode parameter set (P,) fitted on ``others`` (physical)."""
    from mdpl.calibrate.surrogate_route import calibrate_with_surrogate

    res = calibrate_with_surrogate(surrogate, others, cfg, train_masks=train_masks, mode="pft", source=SOURCE,
                                   progress=progress)
    return np.asarray(res.params[0], float)


def own_inputs_transfer(surrogate, others, left, cfg, train_masks, *, progress: bool = False) -> np.ndarray:
    """The generator's own-inputs transfer: an ``'all'``-mode generator fitted on ``others``, evaluated at the
    left-out site's own training-period forcing summary, attributes and PFT defaults; (P,) physical."""
    import torch

    from mdpl.calibrate.generator_training import build_generators, generate
    from mdpl.calibrate.inputs import default_priors, site_inputs, stack_inputs
    from mdpl.calibrate.surrogate_route import calibrate_with_surrogate
    from mdpl.data.features import split_periods

    res = calibrate_with_surrogate(surrogate, others, cfg, train_masks=train_masks, mode="all", source=OWN_SOURCE,
                                   progress=progress)
    gens = build_generators(1, stack_inputs(others, train_masks), surrogate.space, mode="all",
                            hidden=cfg.calibration.hidden_size, trust_radius=cfg.calibration.trust_radius)
    gens[0].load_state_dict(res.generator_state[0])
    x = torch.as_tensor(site_inputs(left, split_periods(left.days)[0])[None], dtype=torch.float32)
    prior = torch.as_tensor(default_priors(surrogate.space, [left]), dtype=torch.float32)
    with torch.no_grad():
        return generate(gens, x, prior, None)[0].numpy().astype(float)


def load_transfer(out_dir) -> tuple[pd.DataFrame, dict]:
    """(records, site -> daily series Dataset) of a finished transfer experiment; empty when none ran."""
    import xarray as xr

    tdir = Path(out_dir) / TRANSFER_DIR
    if not (tdir / "records.json").is_file():
        return pd.DataFrame(), {}
    recs = pd.DataFrame(json.loads((tdir / "records.json").read_text())["records"])
    series = {p.stem.removeprefix("series_"): xr.load_dataset(p) for p in sorted(tdir.glob("series_*.nc"))}
    return recs, series
