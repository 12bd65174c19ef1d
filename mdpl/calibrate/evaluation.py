"""Run the land model itself with calibrated parameters and score it against observations.

Whatever route produced the parameters (PFT defaults, MdPL, dPL, direct,
classical), the verdict comes from the land model, not from a surrogate.
All parameter sources of a site run in one batched call (one column per
source). Scores are daily and monthly, on the training and the held-out
test period, on measured days only, for Qle, Qh and NEE (NEE is never
calibrated: it shows what the energy fluxes' parameters do to carbon) on the
tower's observed basis, and for ``Qle_cor``/``Qh_cor``: the same simulated
Qle/Qh scored on the energy-balance-closed basis (PLUMBER2's corrected
series where a site has one, else the Bowen-ratio closure of
:mod:`mdpl.data.closure`; the record's ``observed`` field names the series).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mdpl.calibrate.targets import observed_daily
from mdpl.ils.batching import batch_groups, pad_group
from mdpl.evaluate.metrics import all_metrics

#: fluxes simulated for every source
SCORED_FLUXES = ("Qle", "Qh", "NEE")
#: scored records: record flux name -> (simulated flux, target basis of the observations)
SCORES = {"Qle": ("Qle", "observed"), "Qh": ("Qh", "observed"), "NEE": ("NEE", "observed"),
          "Qle_cor": ("Qle", "closed"), "Qh_cor": ("Qh", "closed")}
#: a month is scored when it has at least this many measured days in the period
MIN_DAYS_PER_MONTH = 10


def _site_days(ds) -> pd.DatetimeIndex:
    """Calendar days of a site's step-start labels (how the land model chunks its daily output)."""
    return pd.DatetimeIndex(ds["time"].values).normalize().unique()


def simulate_sources(model, ds, params: dict[str, np.ndarray], *, fluxes=SCORED_FLUXES) -> dict[str, pd.DataFrame]:
    """Daily means of ``fluxes`` for each source's parameter set (P,) at one site (one batched run).

    Returns source -> DataFrame indexed by day (units: W m-2 for Qle/Qh, umol m-2 s-1 for NEE).
    """
    return simulate_sources_many(model, [ds], {k: np.asarray(v, float)[None] for k, v in params.items()}, fluxes=fluxes)[0]


def simulate_sources_many(model, datasets, params: dict[str, np.ndarray], *, fluxes=SCORED_FLUXES,
                          native: Sequence[str] = (), native_out: list | None = None) -> list[dict[str, pd.DataFrame]]:
    """Like :func:`simulate_sources` for several sites in one land-model call.

    The sites must share a :func:`mdpl.ils.batching.batch_key`; shorter records are padded to the
    longest (:func:`mdpl.ils.batching.pad_group`) and each site keeps its own days only.
    ``params``: source -> (n_sites, P). Returns, per site, source -> daily DataFrame. With ``native``
    (flux names), the run keeps every time step and appends to ``native_out``, per site, source ->
    flux -> (site steps,) float32 array at the forcing's own step (the PLUMBER2 basis); the daily
    means are then those of the steps, as in the model's own daily output.
    """
    names = list(params)
    p = np.stack([np.stack([np.asarray(params[k][i], dtype=float) for k in names]) for i in range(len(datasets))])
    forcing = pad_group(datasets) if len(datasets) > 1 else [datasets[0]]
    with torch.no_grad():
        res = model.simulate(forcing if len(forcing) > 1 else forcing[0], p, daily=not native)
    edges = None
    if native and res.fluxes[fluxes[0]].shape[-1] != int(forcing[0].sizes["time"]):
        native = ()  # the model gave daily output only: nothing at the native step to keep
    if native:
        t = pd.DatetimeIndex(forcing[0]["time"].values)
        day = t.normalize().values
        edges = np.concatenate([[0], np.flatnonzero(day[1:] != day[:-1]) + 1])
    n_sets = len(names)
    out = []
    for i, ds in enumerate(datasets):
        days = _site_days(ds)
        n_steps = int(ds.sizes["time"])
        site, native_site = {}, {}
        for j, k in enumerate(names):
            b = i * n_sets + j
            cols, steps = {}, {}
            for f in dict.fromkeys([*fluxes, *native]):
                v = res.fluxes[f][b]
                v = (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)).astype(float)
                if native:
                    if f in native:
                        steps[f] = v[:n_steps].astype(np.float32)
                    v = np.add.reduceat(v, edges) / np.diff(np.append(edges, len(v)))
                if f in fluxes:
                    cols[f] = v[: len(days)]
            site[k] = pd.DataFrame(cols, index=days[: len(cols[fluxes[0]])])
            if native:
                native_site[k] = steps
        out.append(site)
        if native and native_out is not None:
            native_out.append(native_site)
    return out


def monthly_means(frame: pd.DataFrame, min_days: int = MIN_DAYS_PER_MONTH) -> pd.DataFrame:
    """Calendar-month means of every column of a day-indexed frame that holds only the days to use.

    Months with fewer than ``min_days`` rows are dropped (the monthly scores'
    rule); the index is the month (a pandas Period).
    """
    g = frame.groupby(pd.DatetimeIndex(frame.index).to_period("M"))
    return g.mean()[g.size() >= min_days]


def monthly_pairs(days: pd.DatetimeIndex, obs: np.ndarray, sim: np.ndarray, use: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Monthly means of obs and sim over the ``use`` days; months with fewer than MIN_DAYS_PER_MONTH dropped."""
    df = pd.DataFrame({"obs": obs, "sim": sim}, index=pd.DatetimeIndex(days))[np.asarray(use, bool)]
    if df.empty:
        return np.array([]), np.array([])
    m = monthly_means(df)
    return m["obs"].to_numpy(), m["sim"].to_numpy()


def score_site(
    features,
    sims: dict[str, pd.DataFrame],
    masks: dict[str, np.ndarray],
    *,
    corrected=None,
    fluxes=None,
) -> list[dict]:
    """Metric records of one site: every source x scored flux x period (``masks``: name -> day mask) x scale.

    ``fluxes``: record names of :data:`SCORES` (default: all). ``corrected``
    (a target basis) replaces the basis of Qle and Qh; by default they are
    scored on the observed basis, and Qle_cor/Qh_cor on the closed one.
    """
    days = pd.DatetimeIndex(features.days)
    records = []
    for flux in fluxes or tuple(SCORES):
        sim_flux, basis = SCORES[flux]
        if corrected not in (None, False) and flux in ("Qle", "Qh"):
            basis = corrected
        try:
            obs, measured, used = observed_daily(features, sim_flux, basis)
        except Exception:  # a flux the site lacks is simply not scored
            continue
        if flux != sim_flux and used == sim_flux:  # no corrected series at this site: nothing new to score
            continue
        for source, df in sims.items():
            if sim_flux not in df:
                continue
            sim = df[sim_flux].reindex(days).to_numpy(dtype=float)
            for period, pmask in masks.items():
                use = measured & np.asarray(pmask, bool) & np.isfinite(sim)
                for scale in ("daily", "monthly"):
                    if scale == "daily":
                        o, s = obs[use], sim[use]
                    else:
                        o, s = monthly_pairs(days, obs, sim, use)
                    m = all_metrics(o, s)
                    records.append(
                        {
                            "site": str(features.site),
                            "igbp": str(features.igbp),
                            "pft_group": str(features.pft_group),
                            "flux": flux,
                            "observed": used,
                            "period": period,
                            "scale": scale,
                            "source": source,
                            **{k: (float(v) if k != "n" else int(v)) for k, v in m.items()},
                        }
                    )
    return records


#: a run that keeps every step holds ~24 outputs x 4 bytes per column-step: about 2 GB at this many
MAX_NATIVE_COLUMN_STEPS = 20_000_000


def _memory_chunks(group: list[int], datasets, n_sets: int) -> list[list[int]]:
    """``group`` split into consecutive calls whose columns x (padded) steps stay within the memory bound."""
    steps = max(int(datasets[i].sizes["time"]) for i in group)
    per_call = max(1, MAX_NATIVE_COLUMN_STEPS // max(1, steps * n_sets))
    return [group[k : k + per_call] for k in range(0, len(group), per_call)]


def run_sources(model, datasets: Sequence, params_by_source: dict[str, np.ndarray], *, progress: bool = True,
                native: Sequence[str] = (), native_out: list | None = None) -> list[dict[str, pd.DataFrame]]:
    """Daily land-model series of every source at every site (sites of a :func:`batch_groups` group in one call).

    ``params_by_source``: source -> (n_sites, P). Returns, in site order, source -> daily DataFrame. With
    ``native`` (flux names), ``native_out`` (a list) receives, in site order, source -> flux -> the
    series at every time step of the same runs (calls then bounded by :data:`MAX_NATIVE_COLUMN_STEPS`).
    """
    out: list = [None] * len(datasets)
    kept: list = [None] * len(datasets)
    groups = batch_groups(datasets)
    if native:
        groups = [c for g in groups for c in _memory_chunks(g, datasets, len(params_by_source))]
    for idx in tqdm(groups, desc="land-model runs", disable=not progress, leave=False):
        steps: list = []
        sims = simulate_sources_many(model, [datasets[i] for i in idx],
                                     {k: np.asarray(v)[idx] for k, v in params_by_source.items()}, native=native,
                                     native_out=steps)
        for j, (i, sim) in enumerate(zip(idx, sims)):
            out[i] = sim
            kept[i] = steps[j] if steps else None
    if native_out is not None:
        native_out.extend(kept)
    return out


def score_sources(features_list: Sequence, sims: Sequence[dict[str, pd.DataFrame]],
                  split: Sequence[tuple[np.ndarray, np.ndarray]], *, corrected=None) -> list[dict]:
    """Metric records of every site (``sims`` in site order, as :func:`run_sources` returns)."""
    records = []
    for f, sim, (train, test) in zip(features_list, sims, split):
        records += score_site(f, sim, {"train": train, "test": test}, corrected=corrected)
    return records


def evaluate_sources(
    model,
    datasets: Sequence,
    features_list: Sequence,
    params_by_source: dict[str, np.ndarray],
    split: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    corrected=None,
    progress: bool = True,
    native: Sequence[str] = (),
    native_out: dict | None = None,
) -> tuple[list[dict], dict[str, dict[str, pd.DataFrame]]]:
    """Run and score every source at every site.

    ``params_by_source``: source -> (n_sites, P) physical parameters in site
    order; ``split``: per site (train_mask, test_mask) over its feature days.
    Returns the metric records and site -> source -> daily simulation. With
    ``native`` (flux names), the same runs also keep those fluxes at every
    time step, into ``native_out[site][source][flux]`` (see
    :func:`simulate_sources_many`), so the PLUMBER2-basis scores need no
    second run; sites then go in calls of at most
    :data:`MAX_NATIVE_COLUMN_STEPS` column-steps (memory bound).
    """
    kept: list = []
    sims = run_sources(model, datasets, params_by_source, progress=progress, native=native, native_out=kept)
    records = score_sources(features_list, sims, split, corrected=corrected)
    if native_out is not None:
        for f, k in zip(features_list, kept):
            if k:
                native_out[str(f.site)] = k
    return records, {str(f.site): s for f, s in zip(features_list, sims)}
