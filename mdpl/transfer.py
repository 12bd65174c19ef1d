"""Transferability (paper experiment 4): leave one site out within each PFT group.

For every PFT group with at least two sites of a finished study, and every
site ``s`` in it, a generator is trained through the study's frozen
multi-task surrogate in ``'pft'`` mode (one parameter set for the group) on
the *other* sites of the group only, over their training periods. The land
model is then run at ``s`` with that group parameter set and scored exactly
like the study's own sources (:func:`mdpl.calibrate.evaluation.evaluate_sources`),
under the source name ``loso``. Site ``s``'s observations are never seen.

Results go to ``<study>/transfer/``: ``records.json`` (``{"records": [...]}``,
the study's record format), ``parameters.csv`` (the transferred parameters
per left-out site) and ``series_<site>.nc`` (daily land-model fluxes with the
transferred parameters). A rerun with the same study reuses them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.errors import ConfigError

SOURCE = "loso"
TRANSFER_DIR = "transfer"


def groups_of(features: dict) -> dict[str, list[str]]:
    """PFT group -> its sites (study order) for groups with at least two sites."""
    groups: dict[str, list[str]] = {}
    for site, f in features.items():
        groups.setdefault(str(f.pft_group), []).append(site)
    return {g: s for g, s in groups.items() if len(s) >= 2}


def _fingerprint(out: Path) -> str:
    h = hashlib.sha256((out / "metrics.json").read_bytes())
    for p in sorted((out / "surrogates" / "multitask").glob("*")):
        if p.is_file() and p.suffix in (".json", ".pt"):
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def loso_transfer(cfg, out_dir, datasets, *, model=None, progress: bool = False) -> pd.DataFrame:
    """Run (or reuse) the leave-one-site-out experiment of the study in ``out_dir``; return its records.

    ``datasets``: the canonical site Datasets the study ran on (forcing for
    the land model), in any order; only sites in PFT groups of two or more
    are used. ``model`` defaults to the study's land model.
    """
    import xarray as xr

    from mdpl.calibrate.evaluation import evaluate_sources
    from mdpl.calibrate.result import atomic_write_text
    from mdpl.calibrate.surrogate_route import calibrate_with_surrogate
    from mdpl.calibrate.surrogate_training import TrainedSurrogate
    from mdpl.data.features import split_periods
    from mdpl.device import resolve_device
    from mdpl.ensemble import EnsembleStore
    from mdpl.study import load_study, make_model

    out = Path(out_dir)
    study = load_study(out)
    sur_dir = out / "surrogates" / "multitask"
    if not sur_dir.is_dir():
        raise ConfigError(f"{out}: the study has no multi-task surrogate (calibration.sources lacks 'mdpl')")
    tdir = out / TRANSFER_DIR
    fp = _fingerprint(out)
    stamp = tdir / "stage.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fp:
        return pd.DataFrame(json.loads((tdir / "records.json").read_text())["records"])

    store = EnsembleStore.open(out / "ensemble")
    features = {s: store.features[s] for s in study.sites if s in store.features}
    by_site = {str(ds.attrs["site"]): ds for ds in datasets}
    groups = groups_of(features)
    surrogate = TrainedSurrogate.load(sur_dir).freeze()
    if model is None:
        model = make_model(cfg, resolve_device(cfg.device))
    records, params_rows = [], []
    tdir.mkdir(parents=True, exist_ok=True)
    for group, sites in groups.items():
        for left in sites:
            if left not in by_site:
                raise ConfigError(f"loso_transfer: no dataset given for site {left}")
            others = [features[s] for s in sites if s != left]
            train = [split_periods(f.days)[0] for f in others]
            res = calibrate_with_surrogate(surrogate, others, cfg, train_masks=train, mode="pft", source=SOURCE,
                                           progress=progress)
            theta = np.asarray(res.params[0], float)  # 'pft' mode: one set for the whole group
            f = features[left]
            split = split_periods(f.days)
            recs, series = evaluate_sources(model, [by_site[left]], [f], {SOURCE: theta[None]}, [split],
                                            corrected=cfg.data.corrected_fluxes, progress=progress)
            for r in recs:
                r["trained_on"] = ",".join(s for s in sites if s != left)
            records += recs
            params_rows.append({"site": left, "pft_group": group, "trained_on": ",".join(s for s in sites if s != left),
                                **dict(zip(res.param_names, theta))})
            daily = series[left][SOURCE]
            ds = xr.Dataset({f"sim_{SOURCE}_{c}": ("day", daily[c].to_numpy(float)) for c in daily.columns},
                            coords={"day": pd.DatetimeIndex(daily.index)})
            tmp = tdir / f".series_{left}.nc.tmp"
            ds.to_netcdf(tmp)
            tmp.replace(tdir / f"series_{left}.nc")
    atomic_write_text(tdir / "parameters.csv", pd.DataFrame(params_rows).to_csv(index=False, float_format="%.6g"))
    atomic_write_text(tdir / "records.json", json.dumps({"records": records}, indent=1, default=float))
    atomic_write_text(stamp, json.dumps({"fingerprint": fp, "groups": groups}, indent=1))
    return pd.DataFrame(records)


def load_transfer(out_dir) -> tuple[pd.DataFrame, dict]:
    """(records, site -> daily series Dataset) of a finished transfer experiment; empty when none ran."""
    import xarray as xr

    tdir = Path(out_dir) / TRANSFER_DIR
    if not (tdir / "records.json").is_file():
        return pd.DataFrame(), {}
    recs = pd.DataFrame(json.loads((tdir / "records.json").read_text())["records"])
    series = {p.stem.removeprefix("series_"): xr.load_dataset(p) for p in sorted(tdir.glob("series_*.nc"))}
    return recs, series
