"""The benchmark table: every model against the same observations, one tidy CSV.

:func:`build_benchmark_table` gathers, for a set of sites:

- ``1lin`` and ``3km27`` (PLUMBER's empirical benchmarks, leave one site out),
  on the peers' basis (half-hourly measured steps, whole record; monthly) and
  on the calibration's held-out period (daily, monthly);
- the observation LSTM, held-out period (``LSTM``) and leave one site out
  (``LSTM-LOSO``), daily and monthly on the held-out period;
- the calibration's own records (``default``, ``MdPL``, ``dPL``, ``direct``)
  from a study directory's ``metrics.json``;
- the land model with each study parameter set over the whole record, on the
  peers' basis (``include_lsm``): the half-hourly series the study's
  evaluation kept, else (an older study) one half-hourly run of every site's
  whole record with spin-up;
- peer LSMs (JULES, ecLand, and any CSVs a user adds) from peers directories:
  exactly their basis (``plumber2_basis``), and their published monthly means
  over our held-out months (``held_out``, monthly; the basis column says how
  that differs from ours).

Rows are tidy (:data:`mdpl.evaluate.tables.TABLE_COLUMNS`); ranks are only
compared within one (comparison, site, flux, scale) group.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.errors import DataError
from mdpl.evaluate.tables import daily_rows, rank_table, series_rows, tidy

log = logging.getLogger(__name__)

#: calibration ``source`` -> model name in the table
SOURCE_NAMES = {"default": "default", "mdpl": "MdPL", "dpl": "dPL", "direct": "direct", "classical": "classical"}
FLUXES = ("Qle", "Qh")


def _features(datasets: Mapping[str, xr.Dataset], min_measured_fraction: float) -> dict:
    from mdpl.data.features import site_features

    return {s: site_features(ds, min_measured_fraction) for s, ds in datasets.items()}


def _test_steps(ds: xr.Dataset, feat) -> np.ndarray:
    """Boolean per native step: the step's day lies in the held-out period."""
    from mdpl.data.features import split_periods

    _, test = split_periods(feat.days)
    test_days = pd.DatetimeIndex(feat.days)[test]
    return pd.DatetimeIndex(ds["time"].values).floor("D").isin(test_days)


def _daily_of(ds: xr.Dataset, sim: np.ndarray, days) -> np.ndarray:
    """Daily means of a native-step series on the feature days."""
    s = pd.Series(np.asarray(sim, float), index=pd.DatetimeIndex(ds["time"].values))
    return s.groupby(s.index.floor("D")).mean().reindex(pd.DatetimeIndex(days)).to_numpy()


def shared_months(datasets: Mapping[str, xr.Dataset], peer_series: Mapping[str, Mapping[str, dict]] | None) -> dict:
    """Per site and flux, the 'YYYY-MM' months our record and every peer's monthly trend both cover.

    Used so monthly rows on the peers' basis compare the same months; ``{}`` for a
    site the peers do not cover (then our own months are used).
    """
    out: dict[str, dict[str, set[str]]] = {}
    for site, ds in datasets.items():
        ours = set(pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m"))
        per_flux = {}
        for flux in FLUXES:
            sets = []
            for by_site in (peer_series or {}).values():
                tr = ((by_site.get(site) or {}).get("trend") or {}).get(flux) or {}
                if tr.get("labels"):
                    sets.append(set(tr["labels"]))
            if sets:
                per_flux[flux] = ours.intersection(*sets)
        out[site] = per_flux
    return out


def obs_agreement(datasets: Mapping[str, xr.Dataset], peer_series: Mapping[str, Mapping[str, dict]]) -> dict:
    """``{(site, flux): max |our monthly obs - peer monthly obs|}`` (W m-2) over shared months.

    Zero (to the series' rounding) means the peers were scored against the same
    observations as we are; PALS-dialect files of a PLUMBER2 site can differ.
    """
    from mdpl.evaluate.tables import monthly_measured_means

    out = {}
    for site, ds in datasets.items():
        for flux in FLUXES:
            if flux not in ds:
                continue
            labels, obs, _ = monthly_measured_means(ds, flux, np.zeros(ds.sizes["time"]))
            ours = dict(zip(labels, obs))
            diffs = []
            for by_site in peer_series.values():
                tr = ((by_site.get(site) or {}).get("trend") or {}).get(flux) or {}
                for lab, v in zip(tr.get("labels") or [], tr.get("obs") or []):
                    if v is not None and lab in ours:
                        diffs.append(abs(ours[lab] - float(v)))
            if diffs:
                out[(site, flux)] = float(max(diffs))
    return out


def _obs_note(diff: float | None) -> str:
    if diff is None:
        return "peer observations not comparable (no shared months)"
    if diff < 0.01:
        return "peer scored against the same observations as ours (monthly means agree)"
    return f"peer scored against different observations (PLUMBER2 release vs our files; monthly means differ by up to {diff:.1f} W m-2)"


def held_out_months(features: Mapping, min_days: int = 10) -> dict[str, dict[str, set[str]]]:
    """Per site and flux, the 'YYYY-MM' months with at least ``min_days`` measured held-out days."""
    out = {}
    for site, f in features.items():
        _, test = _split(f)
        per = {}
        for flux in FLUXES:
            d = pd.DatetimeIndex(f.days)[f.obs_mask[flux] & test]
            counts = pd.Series(1, index=d).groupby(d.strftime("%Y-%m")).sum()
            per[flux] = set(counts.index[counts >= min_days])
        out[site] = per
    return out


def peer_held_out_rows(series: Mapping, features: Mapping, agree: Mapping) -> list[dict]:
    """Peers' published monthly means scored over our held-out months (approximate basis, stated)."""
    from mdpl.baselines.peers import monthly_rows

    months = held_out_months(features)
    df = monthly_rows(series, list(features), FLUXES, months)
    rows = []
    for r in df.to_dict("records"):
        r["pft"] = features[r["site"]].pft_group
        r["comparison"] = "held_out"
        r["basis"] = (
            "peer's published monthly means of measured half-hourly steps, over the held-out months "
            f"(ours: monthly means of measured days); {_obs_note(agree.get((r['site'], r['flux'])))}"
        )
        rows.append(r)
    return rows


def empirical_rows(
    datasets: Mapping[str, xr.Dataset],
    features: Mapping,
    months: Mapping[str, Mapping[str, set[str]]] | None = None,
    seed: int = 0,
) -> list[dict]:
    """1lin and 3km27, trained out of sample, on both comparison bases."""
    from mdpl.baselines.empirical import predict_out_of_sample

    rows: list[dict] = []
    if len(datasets) < 2:
        log.warning("empirical benchmarks need two or more sites; skipped")
        return rows
    for name in ("1lin", "3km27"):
        preds = predict_out_of_sample(name, datasets, FLUXES, seed=seed)
        for site, p in preds.items():
            ds, feat = datasets[site], features[site]
            note = f"trained at the native step on measured steps of {', '.join(p.trained_on)}"
            r = series_rows(ds, p.fluxes, name, "out", comparison="plumber2_basis",
                            scales=("halfhourly", "monthly"), months=(months or {}).get(site))
            for row in r:
                row["basis"] += f"; {note}"
            rows += r
            _, test = _split(feat)
            daily = {k: _daily_of(ds, v, feat.days) for k, v in p.fluxes.items()}
            rows += daily_rows(
                site, feat.pft_group, feat.days, {k: feat.obs[k] for k in FLUXES}, daily, name, "out",
                comparison="held_out", day_mask={k: feat.obs_mask[k] & test for k in FLUXES},
                basis=f"daily means of measured days, held-out period; {note}",
            )
    return rows


def _split(feat):
    from mdpl.data.features import split_periods

    return split_periods(feat.days)


def lstm_rows(features: Mapping, mode: str = "quick", seed: int = 0, loso: bool = True) -> list[dict]:
    """The observation LSTM (held-out period and leave one site out)."""
    from mdpl.baselines.lstm_obs import LSTMObsSettings, evaluate_obs_lstm, evaluation_rows

    feats = list(features.values())
    evals = evaluate_obs_lstm(feats, LSTMObsSettings.for_mode(mode, seed), loso=loso and len(feats) >= 2)
    return evaluation_rows(evals, {f.site: f.pft_group for f in feats})


def read_study_metrics(study_dir: str | Path) -> list[dict]:
    """Records of ``<study_dir>/metrics.json`` (``{"records": [...]}``), validated."""
    p = Path(study_dir) / "metrics.json"
    if not p.is_file():
        raise DataError(f"{p}: no metrics.json in the study directory (run `mdpl calibrate --out {study_dir}` first)")
    try:
        recs = json.loads(p.read_text())["records"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DataError(f"{p}: not a metrics file with a 'records' list ({e})") from None
    need = {"site", "flux", "period", "scale", "source", "rmse"}
    for i, r in enumerate(recs):
        if not need <= set(r):
            raise DataError(f"{p}: record {i} lacks {', '.join(sorted(need - set(r)))}")
    return recs


def study_rows(study_dir: str | Path, sites: Sequence[str] | None = None, pft: Mapping[str, str] | None = None) -> list[dict]:
    """The calibration's own metrics as tidy rows: test period -> ``held_out``/``out``, train -> ``training``/``in``."""
    rows = []
    for r in read_study_metrics(study_dir):
        if sites is not None and r["site"] not in sites:
            continue
        if r["flux"] not in FLUXES:
            continue
        test = r["period"] == "test"
        src = str(r["source"])
        fitted = src != "default"
        rows.append(
            {
                "site": r["site"],
                "pft": (pft or {}).get(r["site"], r.get("pft", "")),
                "flux": r["flux"],
                "scale": r["scale"],
                "model": SOURCE_NAMES.get(src, src),
                **{k: r.get(k, np.nan) for k in ("rmse", "r", "nse", "kge", "bias", "n")},
                "sample": "out" if (test or not fitted) else "in",
                "period": r.get("period_label") or ("held-out period" if test else "training period"),
                "comparison": "held_out" if test else "training",
                "basis": f"land model with {src} parameters, from {Path(study_dir).name}/metrics.json"
                + (f"; scored against {r['observed']}" if r.get("observed", r["flux"]) != r["flux"] else ""),
            }
        )
    return rows


def build_benchmark_table(
    datasets: Mapping[str, xr.Dataset],
    *,
    study_dir: str | Path | None = None,
    peers_dirs: Sequence[str | Path] = (),
    mode: str = "quick",
    seed: int = 0,
    include_lstm: bool = True,
    include_lsm: bool = False,
    min_measured_fraction: float = 0.75,
) -> pd.DataFrame:
    """All benchmark rows for ``datasets`` (site -> canonical Dataset), ranked by RMSE within groups."""
    from mdpl.baselines.peers import load_peer_series, peer_rows

    if not datasets:
        raise DataError("benchmark: no sites given")
    if study_dir is not None:
        read_study_metrics(study_dir)  # fail before the expensive parts
    features = _features(datasets, min_measured_fraction)
    pft = {s: f.pft_group for s, f in features.items()}
    series: dict = {}
    for d in peers_dirs:
        series.update(load_peer_series(d))
    months = shared_months(datasets, series)

    rows: list[dict] = []
    rows += empirical_rows(datasets, features, months, seed)
    if include_lstm:
        rows += lstm_rows(features, mode, seed)
    if study_dir is not None:
        rows += study_rows(study_dir, list(datasets), pft)
        if include_lsm:
            try:
                from mdpl.baselines.lsm_runs import study_lsm_rows
            except ModuleNotFoundError as e:  # land model not part of this build
                log.warning("land model unavailable (%s); PLUMBER2-basis rows for the study skipped", e)
            else:
                rows += study_lsm_rows(study_dir, datasets, months)
    agree = obs_agreement(datasets, series)
    for d in peers_dirs:
        pr = peer_rows(d, list(datasets), FLUXES, months)
        if pr.empty:
            continue
        pr["pft"] = pr["site"].map(pft)
        pr["comparison"] = "plumber2_basis"
        pr["basis"] = [f"{b}; {_obs_note(agree.get((s, f)))}" for b, s, f in zip(pr["basis"], pr["site"], pr["flux"])]
        rows += pr.to_dict("records")
    if series:
        rows += peer_held_out_rows(series, features, agree)
    df = tidy(rows)
    return rank_table(df)


def benchmark_table(out_dir) -> tuple[pd.DataFrame, bool]:
    """The ranked benchmark table of a study directory, and whether it holds outside models.

    ``out_dir/benchmark/benchmark.csv`` (written by ``mdpl book`` or
    ``mdpl benchmark --study``) when present; otherwise the study's own
    parameter sources only (:func:`mdpl.baselines.table.study_rows`), ranked
    with :func:`mdpl.evaluate.tables.rank_table`.
    """
    csv = Path(out_dir) / "benchmark" / "benchmark.csv"
    if csv.is_file():
        return pd.read_csv(csv), True
    return rank_table(tidy(study_rows(out_dir))), False
