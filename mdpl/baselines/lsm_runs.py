"""The land model with a study's parameter sets on the peers' basis.

The calibration reports daily/monthly skill on its own split. To set MdPL
beside JULES and ecLand on *their* basis, each site's whole record at its
native step with every parameter source of the study (``default``, ``mdpl``,
``dpl``, ``direct``) is scored on half-hourly measured steps of the
uncorrected fluxes, plus monthly means of those steps. The study's
evaluation keeps exactly these runs (``evaluation/native_<site>.nc``,
:mod:`mdpl.evaluate.native`), so they are read from there; only a study
without them is run again (all sites in padded batches,
:mod:`mdpl.ils.batching`). The whole record contains the calibration's
training period, so calibrated rows are ``sample='in'``; default parameters
never saw the data (``'out'``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.errors import DataError

log = logging.getLogger(__name__)

#: calibration ``source`` -> model name in the table (same as the study rows)
SOURCE_NAMES = {"default": "default", "mdpl": "MdPL", "dpl": "dPL", "direct": "direct", "classical": "classical"}


def read_study_parameters(study_dir: str | Path) -> pd.DataFrame:
    """``<study_dir>/parameters.csv``: one row per (site, source), parameters in physical units."""
    p = Path(study_dir) / "parameters.csv"
    if not p.is_file():
        raise DataError(f"{p}: no parameters.csv in the study directory")
    df = pd.read_csv(p)
    # columns may carry units, "vcmax25 [umol m-2 s-1]": keep the bare parameter name
    df = df.rename(columns={c: c.split(" [")[0].strip() for c in df.columns})
    missing = {"site", "source"} - set(df.columns)
    if missing:
        raise DataError(f"{p}: lacks column(s) {', '.join(sorted(missing))}")
    return df


def simulate_sources(ds: xr.Dataset, params: Mapping[str, np.ndarray], model=None) -> dict[str, dict[str, np.ndarray]]:
    """Native-step Qle/Qh (W m-2) of one site for each named parameter vector (physical units)."""
    import torch

    from mdpl.ils.model import EmbeddedLSM

    model = model or EmbeddedLSM(device="cpu")
    names = list(params)
    p = np.stack([np.asarray(params[n], float) for n in names])[None]  # (1 site, n_sets, P)
    with torch.no_grad():
        res = model.simulate(ds, p)
    return {n: {k: res[k][i].detach().cpu().numpy().astype(float) for k in ("Qle", "Qh")} for i, n in enumerate(names)}


def study_lsm_rows(
    study_dir: str | Path,
    datasets: Mapping[str, xr.Dataset],
    months: Mapping[str, Mapping[str, set[str]]] | None = None,
    model=None,
) -> list[dict]:
    """Half-hourly and monthly rows (peers' basis) of the land model with each study parameter source.

    ``model``: a land model with ``simulate(ds, params)`` for sites whose study kept no native-step
    series (default: the embedded LSM on CPU).
    """
    from mdpl.evaluate.native import native_path, read_native
    from mdpl.evaluate.tables import series_rows
    from mdpl.ils.parameters import PARAMETER_SPACE

    p = Path(study_dir) / "parameters.csv"
    if not p.is_file():
        log.warning("%s: no parameters.csv; land-model rows on the PLUMBER2 basis skipped", p)
        return []
    table = read_study_parameters(study_dir)
    names = list(PARAMETER_SPACE.names)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"{p}: lacks parameter column(s) {', '.join(missing)}")
    sets_by_site = {}
    for site, ds in datasets.items():
        sub = table[table["site"] == site]
        sets = {str(r["source"]): r[names].to_numpy(float) for _, r in sub.iterrows()}
        if "default" not in sets:
            sets["default"] = PARAMETER_SPACE.defaults(str(ds.attrs.get("igbp", "")))
        sets_by_site[site] = sets

    sims: dict = {}
    for site, ds in datasets.items():
        path = native_path(Path(study_dir) / "evaluation", site)
        if path.is_file():
            t, kept = read_native(path)
            if np.array_equal(t, ds["time"].values) and set(sets_by_site[site]) <= set(kept):
                sims[site] = {src: kept[src] for src in sets_by_site[site]}
    todo = {s: ds for s, ds in datasets.items() if s not in sims}
    for group in same_time_axis(todo):
        sims.update(simulate_group([todo[s] for s in group], [sets_by_site[s] for s in group], model or _default_model()))
    rows: list[dict] = []
    for site, ds in datasets.items():
        for src, fl in sims[site].items():
            r = series_rows(ds, fl, SOURCE_NAMES.get(src, src), "out" if src == "default" else "in",
                            comparison="plumber2_basis", scales=("halfhourly", "monthly"),
                            months=(months or {}).get(site))
            for row in r:
                row["basis"] += f"; land model with {src} parameters over the whole record"
            rows += r
    return rows


def _default_model():
    from mdpl.ils.model import EmbeddedLSM

    return EmbeddedLSM(device="cpu")


def same_time_axis(datasets: Mapping[str, xr.Dataset]) -> list[list[str]]:
    """Sites that can share one land-model batch (:func:`mdpl.ils.batching.batch_groups`; shorter ones padded)."""
    from mdpl.ils.batching import batch_groups

    names = list(datasets)
    return [[names[i] for i in g] for g in batch_groups([datasets[s] for s in names])]


def simulate_group(dss: list[xr.Dataset], sets: list[Mapping[str, np.ndarray]], model) -> dict:
    """One batched run of sites sharing a :func:`mdpl.ils.batching.batch_key` (shorter ones padded, the padding
    dropped); each site gets its own named parameter sets.

    Sites with fewer sets are padded with their default set (results dropped).
    Returns ``{site: {source: {flux: (time,) W m-2}}}``.
    """
    import torch

    names = [list(s) for s in sets]
    k = max(len(n) for n in names)
    p = np.stack([np.stack([np.asarray(s[n], float) for n in nn] + [np.asarray(s[nn[0]], float)] * (k - len(nn)))
                  for s, nn in zip(sets, names)])  # (sites, k, P)
    from mdpl.ils.batching import pad_group

    with torch.no_grad():
        res = model.simulate(pad_group(dss) if len(dss) > 1 else dss[0], p)
    out = {}
    for i, ds in enumerate(dss):
        site, n = str(ds.attrs.get("site")), int(ds.sizes["time"])
        out[site] = {nm: {f: res[f][i * k + j][:n].detach().cpu().numpy().astype(float) for f in ("Qle", "Qh")}
                     for j, nm in enumerate(names[i])}
    return out
