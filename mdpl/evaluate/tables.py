"""Tidy skill tables: one row per site, flux, scale, model and comparison.

A row says exactly how its number was computed, because the models compared
here were evaluated on different bases by different people:

- ``scale``: ``halfhourly`` (native steps where the observation is measured),
  ``daily`` (daily means, days with at least ``min_measured_fraction`` of
  steps measured, as in CalLMIP) or ``monthly``;
- ``comparison``: ``plumber2_basis`` (the peers' basis: uncorrected fluxes,
  measured half-hourly steps, the whole record; monthly = monthly means of
  those steps) or ``held_out`` (the calibration's test period);
- ``sample``: ``out`` when the model never saw these observations, ``in``
  when it was fitted to (part of) them;
- ``period`` and ``basis`` in words.

Rankings are only made within one (comparison, site, flux, scale) group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data.schema import measured_name
from mdpl.evaluate.metrics import all_metrics

TABLE_COLUMNS = [
    "site",
    "pft",
    "flux",
    "scale",
    "model",
    "rmse",
    "r",
    "nse",
    "kge",
    "bias",
    "n",
    "sample",
    "period",
    "comparison",
    "basis",
]

HALFHOURLY_BASIS = "half-hourly steps with measured obs, uncorrected fluxes"
MONTHLY_BASIS = "monthly means of half-hourly steps with measured obs, uncorrected fluxes"
DAILY_BASIS = "daily means, days with >= {frac:.0%} of steps measured"
MONTHLY_FROM_DAILY_BASIS = "monthly means of those days"


def empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=TABLE_COLUMNS)


def tidy(rows: Sequence[Mapping] | pd.DataFrame) -> pd.DataFrame:
    """Rows as a DataFrame with exactly :data:`TABLE_COLUMNS`, in that order (missing -> NaN)."""
    df = pd.DataFrame(list(rows)) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for c in TABLE_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    return df[TABLE_COLUMNS].reset_index(drop=True)


def period_label(times) -> str:
    """``'YYYY-MM-DD..YYYY-MM-DD'`` spanning ``times`` (empty string when none)."""
    t = pd.DatetimeIndex(np.asarray(times))
    return f"{t.min():%Y-%m-%d}..{t.max():%Y-%m-%d}" if len(t) else ""


def _obs_mask(ds: xr.Dataset, flux: str) -> np.ndarray:
    m = measured_name(flux)
    obs = np.asarray(ds[flux].values, float)
    ok = np.isfinite(obs)
    if m in ds:
        ok &= np.asarray(ds[m].values, bool)
    return ok


def halfhourly_pairs(ds: xr.Dataset, flux: str, sim, period_mask=None):
    """(obs, sim, mask) at the native step: measured steps of the uncorrected flux."""
    obs = np.asarray(ds[flux].values, float)
    mask = _obs_mask(ds, flux)
    if period_mask is not None:
        mask &= np.asarray(period_mask, bool)
    return obs, np.asarray(sim, float), mask


def monthly_measured_means(ds: xr.Dataset, flux: str, sim, months: set[str] | None = None, period_mask=None):
    """Monthly means of obs and sim over measured steps only (the peers' monthly basis).

    Returns ``(labels 'YYYY-MM', obs_means, sim_means)`` for months with at least one
    measured step (restricted to ``months`` when given).
    """
    obs, sim, mask = halfhourly_pairs(ds, flux, sim, period_mask)
    mask &= np.isfinite(sim)
    t = pd.DatetimeIndex(ds["time"].values)
    frame = pd.DataFrame({"obs": obs[mask], "sim": sim[mask]}, index=t[mask])
    g = frame.groupby(frame.index.to_period("M")).mean()  # not strftime per step: ~50x slower on a record
    g.index = g.index.strftime("%Y-%m")
    if months is not None:
        g = g[g.index.isin(sorted(months))]
    return list(g.index), g["obs"].to_numpy(), g["sim"].to_numpy()


def daily_means(ds: xr.Dataset, flux: str, sim, min_measured_fraction: float = 0.75, period_mask=None):
    """Daily means of obs and sim on days with at least ``min_measured_fraction`` of steps measured.

    Returns ``(days, obs_daily, sim_daily)``. Steps outside ``period_mask`` do
    not count towards a day.
    """
    t = pd.DatetimeIndex(ds["time"].values)
    obs = np.asarray(ds[flux].values, float)
    measured = _obs_mask(ds, flux)
    inside = np.ones(len(t), bool) if period_mask is None else np.asarray(period_mask, bool)
    frame = pd.DataFrame(
        {"obs": np.where(inside, obs, np.nan), "sim": np.where(inside, np.asarray(sim, float), np.nan),
         "meas": measured & inside, "inside": inside},
        index=t,
    )
    day = frame.index.floor("D")
    g = frame.groupby(day)
    steps = g["inside"].sum()
    frac = g["meas"].sum() / g["inside"].count()
    means = g[["obs", "sim"]].mean()
    keep = (steps > 0) & (frac >= min_measured_fraction) & means["obs"].notna() & means["sim"].notna()
    return means.index[keep], means["obs"][keep].to_numpy(), means["sim"][keep].to_numpy()


def _row(site, pft, flux, scale, model, metrics, sample, period, comparison, basis) -> dict:
    return {
        "site": site, "pft": pft, "flux": flux, "scale": scale, "model": model, **metrics,
        "sample": sample, "period": period, "comparison": comparison, "basis": basis,
    }


def series_rows(
    ds: xr.Dataset,
    sims: Mapping[str, np.ndarray],
    model: str,
    sample: str,
    *,
    comparison: str = "plumber2_basis",
    scales: Sequence[str] = ("halfhourly", "monthly"),
    period_mask=None,
    months: Mapping[str, set[str]] | None = None,
    min_measured_fraction: float = 0.75,
) -> list[dict]:
    """Rows for one model's native-step series ``sims`` (flux -> array on ``ds.time``) at one site.

    ``halfhourly`` and ``monthly`` use the peers' basis (measured steps only);
    ``daily`` uses the CalLMIP day rule. ``months`` (flux -> labels) restricts
    the monthly rows to months shared with another source.
    """
    site = str(ds.attrs.get("site", "?"))
    pft = str(ds.attrs.get("pft_group", ""))
    t = pd.DatetimeIndex(ds["time"].values)
    inside = np.ones(len(t), bool) if period_mask is None else np.asarray(period_mask, bool)
    rows = []
    for flux, sim in sims.items():
        if flux not in ds:
            continue
        if "halfhourly" in scales:
            obs, s, mask = halfhourly_pairs(ds, flux, sim, inside)
            m = all_metrics(obs, s, mask)
            if m["n"] >= 2:
                per = period_label(t[mask & np.isfinite(s)])
                rows.append(_row(site, pft, flux, "halfhourly", model, m, sample, per, comparison, HALFHOURLY_BASIS))
        if "daily" in scales:
            days, o, s = daily_means(ds, flux, sim, min_measured_fraction, inside)
            m = all_metrics(o, s)
            if m["n"] >= 2:
                basis = DAILY_BASIS.format(frac=min_measured_fraction)
                rows.append(_row(site, pft, flux, "daily", model, m, sample, period_label(days), comparison, basis))
        if "monthly" in scales:
            labels, o, s = monthly_measured_means(ds, flux, sim, (months or {}).get(flux), inside)
            m = all_metrics(o, s)
            if m["n"] >= 2:
                rows.append(
                    _row(site, pft, flux, "monthly", model, m, sample, f"{labels[0]}..{labels[-1]}", comparison, MONTHLY_BASIS)
                )
    return rows


def daily_rows(
    site: str,
    pft: str,
    days,
    obs: Mapping[str, np.ndarray],
    sims: Mapping[str, np.ndarray],
    model: str,
    sample: str,
    *,
    comparison: str = "held_out",
    day_mask: Mapping[str, np.ndarray] | None = None,
    basis: str = "daily means of measured days",
    min_days_per_month: int = 10,
) -> list[dict]:
    """Daily and monthly rows from daily series (for models that only run daily, e.g. the LSTM).

    ``day_mask[flux]`` marks the days that count (measured and in the period);
    monthly values are means of those days per calendar month, for months with
    at least ``min_days_per_month`` such days (as the calibration's evaluation does).
    """
    days = pd.DatetimeIndex(np.asarray(days))
    rows = []
    for flux, sim in sims.items():
        o = np.asarray(obs[flux], float)
        s = np.asarray(sim, float)
        ok = np.isfinite(o) & np.isfinite(s)
        if day_mask is not None and flux in day_mask:
            ok &= np.asarray(day_mask[flux], bool)
        m = all_metrics(o, s, ok)
        if m["n"] < 2:
            continue
        rows.append(_row(site, pft, flux, "daily", model, m, sample, period_label(days[ok]), comparison, basis))
        frame = pd.DataFrame({"o": o[ok], "s": s[ok]}, index=days[ok])
        g = frame.groupby(frame.index.strftime("%Y-%m"))
        mon = g.mean()[g.size() >= min_days_per_month]
        if mon.empty:
            continue
        mm = all_metrics(mon["o"].to_numpy(), mon["s"].to_numpy())
        if mm["n"] >= 2:
            rows.append(
                _row(site, pft, flux, "monthly", model, mm, sample, f"{mon.index[0]}..{mon.index[-1]}", comparison,
                     f"{basis}; {MONTHLY_FROM_DAILY_BASIS} (months with >= {min_days_per_month} such days)")
            )
    return rows


def rank_table(df: pd.DataFrame, metric: str = "rmse", group=("comparison", "site", "flux", "scale")) -> pd.DataFrame:
    """Add ``rank`` (1 = best by ``metric``) and ``n_models`` within each comparable group."""
    from mdpl.evaluate.metrics import BETTER

    out = df.copy()
    key = out[metric].astype(float)
    if BETTER.get(metric, -1) == 0:
        key = key.abs()
    elif BETTER.get(metric, -1) > 0:
        key = -key
    out["_key"] = key
    g = out.groupby(list(group), dropna=False)["_key"]
    out["rank"] = g.rank(method="min", na_option="keep")
    out["n_models"] = g.transform("count")
    return out.drop(columns="_key")


def mean_rank(df: pd.DataFrame, by=("comparison", "flux", "scale", "model")) -> pd.DataFrame:
    """Mean RMSE rank per model over sites (needs :func:`rank_table` first)."""
    r = df.dropna(subset=["rank"]).groupby(list(by))
    out = r.agg(mean_rank=("rank", "mean"), n_sites=("site", "nunique"), mean_rmse=("rmse", "mean")).reset_index()
    return out.sort_values(list(by[:-1]) + ["mean_rank"]).reset_index(drop=True)

