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


def batch_key(ds) -> tuple:
    """Sites with equal keys (steps, step length, time of day of the first stamp) can share one run."""
    t0 = pd.Timestamp(ds["time"].values[0])
    return int(ds.sizes["time"]), float(ds.attrs.get("time_step_s", 0)), t0.hour * 60 + t0.minute


def simulate_sources(model, ds, params: dict[str, np.ndarray], *, fluxes=SCORED_FLUXES) -> dict[str, pd.DataFrame]:
    """Daily means of ``fluxes`` for each source's parameter set (P,) at one site (one batched run).

    Returns source -> DataFrame indexed by day (units: W m-2 for Qle/Qh, umol m-2 s-1 for NEE).
    """
    return simulate_sources_many(model, [ds], {k: np.asarray(v, float)[None] for k, v in params.items()}, fluxes=fluxes)[0]


def simulate_sources_many(model, datasets, params: dict[str, np.ndarray], *, fluxes=SCORED_FLUXES) -> list[dict[str, pd.DataFrame]]:
    """Like :func:`simulate_sources` for several sites sharing a :func:`batch_key` in one land-model call.

    ``params``: source -> (n_sites, P). Returns, per site, source -> daily DataFrame.
    """
    names = list(params)
    p = np.stack([np.stack([np.asarray(params[k][i], dtype=float) for k in names]) for i in range(len(datasets))])
    with torch.no_grad():
        res = model.simulate(datasets if len(datasets) > 1 else datasets[0], p, daily=True)
    n_sets = len(names)
    out = []
    for i, ds in enumerate(datasets):
        days = pd.DatetimeIndex(res.time).normalize() if i == 0 else _site_days(ds)
        site = {}
        for j, k in enumerate(names):
            b = i * n_sets + j
            cols = {}
            for f in fluxes:
                v = res.fluxes[f][b]
                v = (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)).astype(float)
                cols[f] = v[: len(days)]
            site[k] = pd.DataFrame(cols, index=days[: len(cols[fluxes[0]])])
        out.append(site)
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


def run_sources(model, datasets: Sequence, params_by_source: dict[str, np.ndarray], *,
                progress: bool = True) -> list[dict[str, pd.DataFrame]]:
    """Daily land-model series of every source at every site (sites sharing a :func:`batch_key` in one call).

    ``params_by_source``: source -> (n_sites, P). Returns, in site order, source -> daily DataFrame.
    """
    out: list = [None] * len(datasets)
    groups: dict[tuple, list[int]] = {}
    for i, ds in enumerate(datasets):
        groups.setdefault(batch_key(ds), []).append(i)
    for idx in tqdm(list(groups.values()), desc="land-model runs", disable=not progress, leave=False):
        sims = simulate_sources_many(model, [datasets[i] for i in idx],
                                     {k: np.asarray(v)[idx] for k, v in params_by_source.items()})
        for i, sim in zip(idx, sims):
            out[i] = sim
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
) -> tuple[list[dict], dict[str, dict[str, pd.DataFrame]]]:
    """Run and score every source at every site.

    ``params_by_source``: source -> (n_sites, P) physical parameters in site
    order; ``split``: per site (train_mask, test_mask) over its feature days.
    Returns the metric records and site -> source -> daily simulation.
    """
    sims = run_sources(model, datasets, params_by_source, progress=progress)
    records = score_sources(features_list, sims, split, corrected=corrected)
    return records, {str(f.site): s for f, s in zip(features_list, sims)}
