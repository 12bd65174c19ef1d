"""Views of a study's metric records (one per site, flux, period, scale, source): pivots, win rates, periods.

``records`` is the DataFrame of :attr:`mdpl.study.StudyResult.records` (or the
rows of ``metrics.json``): columns site, pft_group, flux, period, scale,
source, n and the metrics of :func:`mdpl.evaluate.metrics.all_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mdpl.evaluate.metrics import BETTER


def evaluation_period(records, *, min_n: int = 10) -> tuple[str, str]:
    """The period the chapters score on, and a sentence saying why.

    'test' (the held-out period) when every site has at least ``min_n``
    measured test days of Qle; otherwise 'train', with a note that the record
    is too short to hold days out (tiny test studies).
    """
    r = records[(records["flux"] == "Qle") & (records["scale"] == "daily") & (records["period"] == "test")]
    if len(r) and r.groupby("site")["n"].max().min() >= min_n:
        return "test", ("Scores are on the held-out test period, which calibration never saw (the last year "
                        "where a site has two or more, else held-out blocks of four weeks).")
    return "train", ("This study's records are too short to hold days out, so scores here are on the calibration "
                     "period itself and measure fit, not prediction.")


def metric_table(records, *, metric: str, period: str, scale: str = "daily", fluxes=("Qle", "Qh"),
                 sources: Sequence[str] | None = None):
    """Pivot of one metric: rows (site, flux), columns source (in ``sources`` order when given)."""
    r = records[(records["period"] == period) & (records["scale"] == scale) & records["flux"].isin(list(fluxes))]
    table = r.pivot_table(index=["site", "flux"], columns="source", values=metric, aggfunc="first")
    if sources is not None:
        table = table[[s for s in sources if s in table.columns]]
    return table


def win_rates(records, *, period: str, source: str = "mdpl", baseline: str = "default",
              fluxes=("Qle", "Qh"), metrics=("rmse", "r", "nse", "kge"), scales=("daily", "monthly")):
    """Share (%) of (site, flux) pairs where ``source`` beats ``baseline``, per metric and scale.

    "Beats" follows :data:`mdpl.evaluate.metrics.BETTER`: lower RMSE, higher
    R/NSE/KGE. Pairs where either value is NaN do not count. Returns a
    DataFrame (metric x scale) of percentages and one of pair counts.
    """

    rates, counts = {}, {}
    for scale in scales:
        r = records[(records["period"] == period) & (records["scale"] == scale) & records["flux"].isin(list(fluxes))]
        wide = {m: r.pivot_table(index=["site", "flux"], columns="source", values=m, aggfunc="first") for m in metrics}
        rates[scale], counts[scale] = {}, {}
        for m, t in wide.items():
            if source not in t or baseline not in t:
                rates[scale][m], counts[scale][m] = np.nan, 0
                continue
            a, b = t[source], t[baseline]
            ok = a.notna() & b.notna()
            wins = (a[ok] < b[ok]) if BETTER[m] < 0 else (a[ok] > b[ok])
            rates[scale][m] = 100.0 * float(wins.mean()) if ok.any() else np.nan
            counts[scale][m] = int(ok.sum())
    return pd.DataFrame(rates), pd.DataFrame(counts)


def transfer_table(study_records, transfer_records, *, metric: str = "kge", period: str, scale: str = "daily",
                   fluxes=("Qle", "Qh"), sources=("default", "mdpl", "loso")):
    """Rows (PFT group, site) of the left-out sites, columns (flux, source): one metric, one period and scale.

    ``mdpl`` is the site's own calibration; ``loso`` the parameters transferred
    from the other sites of its PFT group.
    """
    if transfer_records is None or len(transfer_records) == 0:
        return pd.DataFrame()
    sites = set(transfer_records["site"])
    r = pd.concat([study_records[study_records["site"].isin(sites)], transfer_records], ignore_index=True)
    r = r[(r["period"] == period) & (r["scale"] == scale) & r["flux"].isin(list(fluxes)) & r["source"].isin(list(sources))]
    table = r.pivot_table(index=["pft_group", "site"], columns=["flux", "source"], values=metric, aggfunc="first")
    cols = [(f, s) for f in fluxes for s in sources if (f, s) in table.columns]
    return table[cols]
