"""Peer land models' published skill in PLUMBER2 (JULES, ecLand, and any a user adds).

A peers directory holds, per model, ``<MODEL>_metrics.csv`` (one row per
site and variable: site, period, variable, n, bias, rmse, r, nme, std_obs,
std_mod, pct_measured) and optionally ``<MODEL>_series.json`` (monthly trend
and climatology per site). The CSV numbers were computed on half-hourly steps
where the observation is measured (``_qc == 0``), against *uncorrected* Qle/Qh,
over each site's whole PLUMBER2 period; we keep that basis and say so in every
row. A user adds CLM5, Noah, GFDL ... by dropping CSVs of the same format in
the directory: every ``*.csv`` there is a model, named by its file stem
without ``_metrics``.

NSE is derived exactly from the CSV (population SDs): NSE = 1 - rmse^2 / std_obs^2.
KGE needs the observed mean, which the CSV does not give, so half-hourly peer
KGE is NaN. Monthly rows are computed from the series' monthly means.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.errors import DataError
from mdpl.evaluate.metrics import all_metrics

#: columns a peer metrics CSV must have
PEER_COLUMNS = ("site", "period", "variable", "n", "bias", "rmse", "r", "std_obs", "std_mod")

#: how each peer number was computed, written into the table's ``basis`` column
HALFHOURLY_BASIS = "half-hourly steps with measured obs (qc==0), uncorrected fluxes"
MONTHLY_BASIS = "monthly means of half-hourly steps with measured obs, uncorrected fluxes"


def default_peers_dir() -> Path | None:
    """``<data dir>/reference/peers`` when it exists, else None."""
    from mdpl.config import default_data_dir

    d = default_data_dir()
    if d is None:
        return None
    p = Path(d) / "reference" / "peers"
    return p if p.is_dir() else None


def peer_model_name(path: str | Path) -> str:
    """Model name from a peer file name: ``JULES_GL9_metrics.csv`` -> ``JULES_GL9``."""
    stem = Path(path).name
    for suffix in ("_metrics.csv", "_series.json", ".csv", ".json"):
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return Path(path).stem


def _check_dir(peers_dir: str | Path) -> Path:
    p = Path(peers_dir)
    if not p.is_dir():
        raise DataError(f"{p}: peers directory not found")
    return p


def read_peer_csv(path: str | Path) -> pd.DataFrame:
    """One peer model's per-site metrics CSV, validated; adds a ``model`` column."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype={"site": str, "period": str, "variable": str})
    except Exception as e:  # pandas raises many kinds for a bad file
        raise DataError(f"{path}: not a readable CSV ({e})") from None
    missing = [c for c in PEER_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: peer metrics CSV lacks column(s) {', '.join(missing)}; "
            f"expected at least {', '.join(PEER_COLUMNS)}"
        )
    for c in ("n", "bias", "rmse", "r", "std_obs", "std_mod"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df.insert(0, "model", peer_model_name(path))
    return df


def load_peer_metrics(peers_dir: str | Path) -> pd.DataFrame:
    """All peer CSVs in ``peers_dir`` stacked (model, site, period, variable, ...)."""
    p = _check_dir(peers_dir)
    files = sorted(p.glob("*.csv"))
    if not files:
        raise DataError(f"{p}: no peer metrics CSV (*.csv) found")
    return pd.concat([read_peer_csv(f) for f in files], ignore_index=True)


def load_peer_series(peers_dir: str | Path) -> dict[str, dict[str, dict]]:
    """``{model: {site: entry}}`` from every ``*_series.json`` in ``peers_dir``."""
    p = _check_dir(peers_dir)
    out: dict[str, dict[str, dict]] = {}
    for f in sorted(p.glob("*_series.json")):
        try:
            raw = json.loads(f.read_text())
            out[peer_model_name(f)] = {s["site"]: s for s in raw["sites"]}
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataError(f"{f}: not a peer series file with a 'sites' list ({e})") from None
    return out


def _nse_from_csv(rmse: float, std_obs: float) -> float:
    if not (math.isfinite(rmse) and math.isfinite(std_obs)) or std_obs <= 0:
        return math.nan
    return 1.0 - rmse**2 / std_obs**2


def halfhourly_rows(metrics: pd.DataFrame, sites: list[str] | None = None, fluxes=("Qle", "Qh")) -> pd.DataFrame:
    """Tidy half-hourly rows from stacked peer metrics (see :func:`load_peer_metrics`)."""
    df = metrics[metrics["variable"].isin(fluxes)]
    if sites is not None:
        df = df[df["site"].isin(sites)]
    df = df[df["n"].fillna(0) > 0]
    rows = []
    for _, r in df.iterrows():
        rows.append(
            {
                "site": r["site"],
                "flux": r["variable"],
                "scale": "halfhourly",
                "model": r["model"],
                "rmse": float(r["rmse"]),
                "r": float(r["r"]),
                "nse": _nse_from_csv(float(r["rmse"]), float(r["std_obs"])),
                "kge": math.nan,
                "bias": float(r["bias"]),
                "n": int(r["n"]),
                "sample": "out",
                "period": str(r["period"]),
                "basis": HALFHOURLY_BASIS + " (PLUMBER2 period, published run)",
            }
        )
    return pd.DataFrame(rows)


def monthly_rows(
    series: dict[str, dict[str, dict]],
    sites: list[str] | None = None,
    fluxes=("Qle", "Qh"),
    months: dict | None = None,
) -> pd.DataFrame:
    """Tidy monthly rows from peer series' ``trend`` (monthly obs/mod means).

    ``months`` optionally restricts each site to a set of ``'YYYY-MM'`` labels
    (e.g. the months our own data covers), so both sides share a period;
    ``months[site]`` is a set, or a mapping flux -> set.
    """
    rows = []
    for model, by_site in series.items():
        for site, entry in by_site.items():
            if sites is not None and site not in sites:
                continue
            for flux in fluxes:
                tr = (entry.get("trend") or {}).get(flux) or {}
                labels = list(tr.get("labels") or [])
                if not labels:
                    continue
                obs = np.array([np.nan if v is None else v for v in tr["obs"]], dtype=float)
                mod = np.array([np.nan if v is None else v for v in tr["mod"]], dtype=float)
                keep = np.ones(len(labels), bool)
                allowed = (months or {}).get(site)
                if isinstance(allowed, dict):
                    allowed = allowed.get(flux)
                if allowed is not None:
                    keep = np.array([lab in allowed for lab in labels], bool)
                m = all_metrics(obs, mod, keep)
                if m["n"] < 2:
                    continue
                used = [lab for lab, k, o, s in zip(labels, keep, obs, mod) if k and np.isfinite(o) and np.isfinite(s)]
                rows.append(
                    {
                        "site": site,
                        "flux": flux,
                        "scale": "monthly",
                        "model": model,
                        **m,
                        "sample": "out",
                        "period": f"{used[0]}..{used[-1]}",
                        "basis": MONTHLY_BASIS + " (published run)",
                    }
                )
    return pd.DataFrame(rows)


def peer_rows(
    peers_dir: str | Path,
    sites: list[str] | None = None,
    fluxes=("Qle", "Qh"),
    months: dict | None = None,
) -> pd.DataFrame:
    """Every peer model's half-hourly (CSV) and monthly (series JSON) rows for ``sites``.

    Peer LSMs were not fitted to these observations, so every row is ``sample='out'``.
    """
    parts = [halfhourly_rows(load_peer_metrics(peers_dir), sites, fluxes)]
    parts.append(monthly_rows(load_peer_series(peers_dir), sites, fluxes, months))
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def peer_periods(peers_dir: str | Path) -> dict[tuple[str, str], str]:
    """``{(model, site): period}`` as the peer CSVs state it (e.g. ``'2000-2002'``)."""
    df = load_peer_metrics(peers_dir)
    return {(r.model, r.site): str(r.period) for r in df[["model", "site", "period"]].drop_duplicates().itertuples()}
