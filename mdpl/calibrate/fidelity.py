"""How faithfully a surrogate reproduces the land model on parameter sets (and sites) it has not seen.

:func:`fidelity_report` compares surrogate predictions with the land-model
daily fluxes of an ensemble store, per flux and per site, with
:func:`mdpl.evaluate.metrics.all_metrics` (RMSE, R, NSE, KGE, bias, n) on the
pooled (member, day) pairs plus

- ``r2``: the coefficient of determination ``1 - SSE / SS_tot`` of the
  pooled pairs (equal to the pooled NSE; the fidelity target is on this);
- ``r2_param``: the same on anomalies from the ensemble mean of each day,
  i.e. how much of the *parameter-driven* spread the surrogate captures --
  what the calibration actually relies on;
- ``median_member_nse``: the median over members of the per-series NSE.

Rows: one per (flux, site) and a pooled ``site='ALL'`` row per flux and
scope. ``scope`` is ``'heldout_params'`` for the test members of a site the
surrogate was trained on and ``'unseen_site'`` for a site it never saw.
The worst (site, member) series per flux (lowest NSE) are in
``report.attrs['worst']`` (a DataFrame) and :func:`worst_cases`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mdpl.errors import DataError
from mdpl.evaluate.metrics import all_metrics, nse

COLUMNS = ["flux", "site", "scope", "n_members", "rmse", "r", "r2", "r2_param", "nse", "kge", "bias", "n",
           "median_member_nse"]


def _members_for(surrogate, store, site: str, members) -> tuple[list[int], str]:
    split = getattr(surrogate, "split", {}) or {}
    trained_here = site in split and Path(str(surrogate.info.get("store", ""))).resolve() == Path(store.path).resolve()
    scope = "heldout_params" if site in split else "unseen_site"
    if isinstance(members, dict):
        return list(members[site]), scope
    if members == "all" or not trained_here:
        ok = store.finite([t for t in surrogate.tasks if t in store.daily])[store.site_index(site)]
        return [m for m in range(store.n_members) if ok[m]], scope
    if members in ("test", "val", "train"):
        return list(split[site][members]), scope if members != "train" else "train_params"
    raise ValueError(f"members must be 'test', 'val', 'train', 'all' or a dict site -> indices, got {members!r}")


@torch.no_grad()
def predict_members(surrogate, store, site: str, members, chunk: int = 128) -> dict[str, np.ndarray]:
    """Surrogate daily fluxes {task: (len(members), days)} at ``site`` for store members."""
    f = store.features[site]
    theta = np.asarray(store.params[store.site_index(site)][members], dtype=np.float64)
    out: dict[str, list[np.ndarray]] = {t: [] for t in surrogate.tasks}
    for a in range(0, len(members), chunk):
        pred = surrogate.predict(f, torch.as_tensor(theta[a : a + chunk]))
        for t in surrogate.tasks:
            out[t].append(pred[t].detach().cpu().numpy().astype(np.float64))
    return {t: np.concatenate(v, axis=0) for t, v in out.items()}


def _row(flux, site, scope, obs, sim, n_members) -> dict:
    """Metrics of (member, day) arrays ``obs`` (land model) and ``sim`` (surrogate)."""
    m = all_metrics(obs, sim)
    anom_o = obs - np.nanmean(obs, axis=0, keepdims=True)
    anom_s = sim - np.nanmean(obs, axis=0, keepdims=True)
    per_member = [nse(o, s) for o, s in zip(obs, sim)]
    return {
        "flux": flux, "site": site, "scope": scope, "n_members": n_members,
        "rmse": m["rmse"], "r": m["r"], "r2": nse(obs.ravel(), sim.ravel()),
        "r2_param": nse(anom_o.ravel(), anom_s.ravel()) if obs.shape[0] > 1 else math.nan,
        "nse": m["nse"], "kge": m["kge"], "bias": m["bias"], "n": m["n"],
        "median_member_nse": float(np.nanmedian(per_member)) if per_member else math.nan,
    }


def fidelity_report(surrogate, store_or_runs, *, members="test", sites=None, n_worst: int = 5) -> pd.DataFrame:
    """Surrogate vs land model per flux and site; see the module docstring for the columns.

    ``store_or_runs``: an :class:`~mdpl.ensemble.EnsembleStore` or its
    directory. ``members``: 'test' (default: the members held out from
    training, at sites the surrogate was trained on; every member at other
    sites or in another store), 'val', 'train', 'all', or a dict site ->
    member indices. ``sites``: a subset of the store's sites.
    """
    from mdpl.ensemble.store import EnsembleStore

    store = store_or_runs if isinstance(store_or_runs, EnsembleStore) else EnsembleStore.open(store_or_runs)
    sites = list(sites or store.sites)
    tasks = [t for t in surrogate.tasks if t in store.daily]
    if not tasks:
        raise DataError(f"{store.path}: none of the surrogate's fluxes ({', '.join(surrogate.tasks)}) in the ensemble")
    rows, worst, pooled = [], [], {}
    for site in sites:
        idx, scope = _members_for(surrogate, store, site, members)
        if not idx:
            continue
        pred = predict_members(surrogate, store, site, idx)
        for flux in tasks:
            obs = store.member_series(site, flux)[idx].astype(np.float64)
            sim = pred[flux]
            rows.append(_row(flux, site, scope, obs, sim, len(idx)))
            pooled.setdefault((flux, scope), []).append((obs, sim))
            for m, o, s in zip(idx, obs, sim):
                worst.append({"flux": flux, "site": site, "member": int(m), "nse": nse(o, s),
                              "rmse": float(np.sqrt(np.nanmean((s - o) ** 2)))})
    for (flux, scope), pairs in pooled.items():
        m = all_metrics(np.concatenate([o.ravel() for o, _ in pairs]), np.concatenate([s.ravel() for _, s in pairs]))
        site_rows = [r for r in rows if r["flux"] == flux and r["scope"] == scope]
        rows.append({
            "flux": flux, "site": "ALL", "scope": scope, "n_members": sum(r["n_members"] for r in site_rows),
            "rmse": m["rmse"], "r": m["r"],
            "r2": nse(np.concatenate([o.ravel() for o, _ in pairs]), np.concatenate([s.ravel() for _, s in pairs])),
            "r2_param": nse(np.concatenate([(o - np.nanmean(o, 0)).ravel() for o, _ in pairs]),
                            np.concatenate([(s - np.nanmean(o, 0)).ravel() for o, s in pairs])),
            "nse": m["nse"], "kge": m["kge"], "bias": m["bias"], "n": m["n"],
            "median_member_nse": float(np.nanmedian([r["median_member_nse"] for r in site_rows])),
        })
    report = pd.DataFrame(rows, columns=COLUMNS)
    w = pd.DataFrame(worst, columns=["flux", "site", "member", "nse", "rmse"])
    w = w.sort_values(["flux", "nse"]).groupby("flux", sort=False).head(n_worst).reset_index(drop=True)
    report.attrs["worst"] = w
    report.attrs["surrogate_kind"] = getattr(surrogate, "kind", "?")
    return report


def worst_cases(report: pd.DataFrame) -> pd.DataFrame:
    """The worst (site, member) series per flux of a :func:`fidelity_report` (lowest NSE first)."""
    return report.attrs.get("worst", pd.DataFrame(columns=["flux", "site", "member", "nse", "rmse"]))


def gap_at(surrogate, model, features_and_ds, params_physical) -> pd.DataFrame:
    """Surrogate-vs-land-model gap at given parameters (e.g. the calibrated ones), per site and flux.

    ``features_and_ds``: list of (SiteFeatures, canonical Dataset) pairs;
    ``params_physical``: (n_sites, P). Runs the land model once per site.
    """
    rows = []
    theta = np.asarray(params_physical, dtype=np.float64)
    for (f, ds), th in zip(features_and_ds, theta):
        with torch.no_grad():
            pred = surrogate.predict(f, torch.as_tensor(th[None]))
            res = model.simulate(ds, th[None], daily=True)
        days = pd.DatetimeIndex(np.asarray(res.time)).floor("D")
        pos = days.get_indexer(f.days)
        for flux in surrogate.tasks:
            if flux not in res.fluxes:
                continue
            lm = res.fluxes[flux]
            lm = (lm.detach().cpu().numpy() if hasattr(lm, "detach") else np.asarray(lm))[0]
            lm = np.where(pos >= 0, lm[np.clip(pos, 0, None)], np.nan)
            sim = pred[flux].detach().cpu().numpy()[0]
            rows.append({"site": f.site, "flux": flux, **all_metrics(lm, sim), "r2": nse(lm, sim)})
    return pd.DataFrame(rows)


def fidelity_table(surrogates: dict, store) -> pd.DataFrame:
    """:func:`mdpl.calibrate.fidelity.fidelity_report` of each surrogate (name -> surrogate), one tidy table.

    Adds a ``surrogate`` column; the per-report ``attrs`` (worst cases) are
    dropped so the reports concatenate.
    """
    frames = []
    for kind, sur in surrogates.items():
        rep = fidelity_report(sur, store)
        rep = pd.DataFrame(rep.to_dict("list"))
        rep["surrogate"] = kind
        frames.append(rep)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
