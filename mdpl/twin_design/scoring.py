"""Scores of the design twin against its known truth: recovery of the rule's parameters, held-out skill.

Recovery is scored on *deviations from the PFT default* in the unit cube, so a
source that returns the defaults scores R^2 <= 0 however much the truth varies
between PFTs. Skill is the held-out daily RMSE against the noise-free truth run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mdpl.evaluate.metrics import nse, pearson_r
from mdpl.twin_design.rule import pft_defaults

#: fewest moved sites a deviation R^2 or correlation is computed over (NaN below)
MIN_SITES_SCORED = 3
#: fluxes the skill table scores (daily means; W m-2, W m-2, umol m-2 s-1)
SKILL_FLUXES = ("Qle", "Qh", "NEE")
#: the order of the sources in the page's tables
SOURCE_ORDER = ("default", "mdpl", "dpl", "direct", "loso", "loso_own")


def _r2(est: np.ndarray, true: np.ndarray) -> float:
    """R^2 of ``est`` as a prediction of ``true`` (NSE; NaN with fewer than :data:`MIN_SITES_SCORED` values)."""
    return nse(true, est) if len(true) >= MIN_SITES_SCORED else math.nan


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation (NaN with fewer than :data:`MIN_SITES_SCORED` values or a constant side)."""
    return pearson_r(a, b) if len(a) >= MIN_SITES_SCORED else math.nan


def recovery_tables(space, sites, igbp, truth, estimates: dict[str, np.ndarray], moved: dict[str, np.ndarray],
                    rule: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per site, per parameter) recovery of the rule parameters, and its summary per source and parameter.

    ``estimates``: source -> (n_sites, P) physical; ``moved``: source -> (n_sites, P) bool, where the source
    was free to move the parameter (the Sobol screen's verdict; all True for a source without a screen).
    The summary scores deviations from the PFT default over the moved sites only: R^2 and correlation of the
    recovered deviation against the true one, and the mean unit-cube error (``mae``) against ``mae_default``.
    """
    u_true = np.asarray(space.to_unit(truth), float)
    u_def = np.asarray(space.to_unit(pft_defaults(space, igbp)), float)
    rows = []
    for src, est in estimates.items():
        u_est = np.asarray(space.to_unit(np.clip(est, space.lower, space.upper)), float)
        for i, s in enumerate(sites):
            for p in rule:
                j = space.index(p)
                rows.append({"site": s, "source": src, "parameter": p, "u_true": u_true[i, j], "u_est": u_est[i, j],
                             "u_default": u_def[i, j], "moved": bool(moved[src][i, j]),
                             "unit_error": abs(u_est[i, j] - u_true[i, j])})
    rec = pd.DataFrame(rows)
    summ = []
    for (src, p), g in rec.groupby(["source", "parameter"], sort=False):
        m = g[g.moved]
        d_true = (m.u_true - m.u_default).to_numpy()
        d_est = (m.u_est - m.u_default).to_numpy()
        summ.append({"source": src, "parameter": p, "sites_moved": int(len(m)), "sites": int(len(g)),
                     "r2_deviation": _r2(d_est, d_true), "corr_deviation": _corr(d_est, d_true),
                     "mae": float(m.unit_error.mean()) if len(m) else float("nan"),
                     "mae_default": float(np.abs(d_true).mean()) if len(m) else float("nan")})
    return rec, pd.DataFrame(summ)


def skill_rows(series: dict, truth_daily: list, days: list, sites: list[str], test_masks: dict,
               sources) -> list[dict]:
    """Held-out daily RMSE against the truth run of every source at every site where it has a series."""
    from mdpl.twin import truth_errors

    rows = []
    for i, site in enumerate(sites):
        ser = series.get(site)
        if ser is None:
            continue
        test = np.asarray(test_masks[site], bool)
        for (flux, src), e in truth_errors(ser, truth_daily[i], days[i], sources, SKILL_FLUXES).items():
            e = e[test]
            rows.append({"site": site, "flux": flux, "source": src,
                         "rmse_vs_truth": float(np.sqrt(np.nanmean(e**2))) if np.isfinite(e).any() else np.nan})
    return rows


def mean_rmse(skill: pd.DataFrame, source: str, flux: str) -> float:
    """Mean held-out RMSE against the truth of ``source`` for ``flux`` over the sites (NaN where it has none)."""
    g = skill[(skill.source == source) & (skill.flux == flux)]
    return float(g.rmse_vs_truth.mean()) if len(g) else float("nan")


def skill_basis(skill: pd.DataFrame) -> str:
    """The column a skill table scores: ``rmse_vs_truth`` (against the noise-free truth run), else
    ``rmse_vs_obs`` (against the noisy observations: a committed result made without the truth run)."""
    return "rmse_vs_truth" if "rmse_vs_truth" in skill else "rmse_vs_obs"


def skill_table(skill: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """Mean held-out RMSE (:func:`skill_basis`) per PFT group and flux (rows) and source (columns), Qle and Qh."""
    s = skill[skill.flux.isin(["Qle", "Qh"])].merge(sites[["site", "pft_group"]], on="site")
    order = [c for c in SOURCE_ORDER if c in set(s.source)]
    t = s.pivot_table(index=["pft_group", "flux"], columns="source", values=skill_basis(skill), aggfunc="mean")
    return t[order]
