"""Is a calibration credible? The symptoms a land modeller checks before believing a better score.

For each parameter source, over the sites of a study:

- ``both_better``: sites where held-out daily RMSE of Qle *and* Qh beat the PFT defaults;
- ``mean_rmse_change_pct``: mean relative RMSE change of Qle and Qh (negative: better);
- ``nee_kept``: sites where NEE, never calibrated, is not worse than with the
  defaults by more than ``nee_tolerance`` (10 %) in held-out daily RMSE;
- ``at_bound_per_site``: calibrated parameters (those that moved off their
  default) within ``bound_tol`` (2 %) of a bound of their box, unit-cube
  distance, mean per site; ``at_bound_any_per_site`` counts every parameter
  (and ``at_trust_edge_per_site`` those on the edge of a trust region).

:func:`credibility` returns one row per source; :func:`positions` the
per-site, per-parameter detail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdpl.evaluate.parameters import BOUND_TOL, bound_side, unit_frame

#: NEE counts as kept when its held-out RMSE is at most this much worse than the defaults' (fraction)
NEE_TOLERANCE = 0.10


def positions(parameters: pd.DataFrame, space, *, tol: float = BOUND_TOL, source_default: str = "default") -> pd.DataFrame:
    """Rows (site, source, parameter, unit, at_bound, moved) from a ``parameters.csv`` frame.

    Columns of ``parameters`` are ``site``, ``source`` and one per parameter
    (named ``name`` or ``name [units]``). ``moved``: differs from the site's
    ``source_default`` row by more than 1e-6 in the unit cube.
    """
    unit = unit_frame(parameters.drop(columns=["site", "source"]), space).to_numpy()
    defaults = {s: unit[i] for i, (s, src) in enumerate(zip(parameters.site, parameters.source)) if src == source_default}
    rows = []
    for i, (site, src) in enumerate(zip(parameters.site, parameters.source)):
        u = unit[i]
        u0 = defaults.get(site, np.full_like(u, np.nan))
        for j, n in enumerate(space.names):
            rows.append({"site": site, "source": src, "parameter": n, "unit": float(u[j]),
                         "at_bound": bound_side(u[j], tol) is not None,
                         "moved": bool(not np.isfinite(u0[j]) or abs(u[j] - u0[j]) > 1e-6)})
    return pd.DataFrame(rows)


def credibility(records: pd.DataFrame, parameters: pd.DataFrame, space, *, period: str = "test", scale: str = "daily",
                nee_tolerance: float = NEE_TOLERANCE, bound_tol: float = BOUND_TOL,
                trust_radius: float = 0.0) -> pd.DataFrame:
    """One row per calibrated source: the counts in the module docstring.

    With a ``trust_radius`` (``calibration.trust_radius``) the walls move in:
    ``at_trust_edge_per_site`` counts the parameters within ``bound_tol`` of
    the edge of their trust region, a wall like the box's.
    """
    r = records[(records.period == period) & (records.scale == scale)]
    piv = r.pivot_table(index=["site", "flux"], columns="source", values="rmse")
    hits = positions(parameters, space, tol=bound_tol) if parameters is not None and len(parameters) else pd.DataFrame()
    out = []
    for src in [s for s in piv.columns if s != "default"]:
        if "default" not in piv.columns:
            break
        sites = sorted({s for s, _ in piv.index})
        both, nee, changes, n_both, n_nee = 0, 0, [], 0, 0
        for s in sites:
            def rm(flux, col):
                try:
                    return float(piv.loc[(s, flux), col])
                except KeyError:
                    return np.nan
            qle = (rm("Qle", "default"), rm("Qle", src))
            qh = (rm("Qh", "default"), rm("Qh", src))
            if all(np.isfinite(qle + qh)):
                n_both += 1
                both += int(qle[1] < qle[0] and qh[1] < qh[0])
                changes += [100 * (qle[1] - qle[0]) / qle[0], 100 * (qh[1] - qh[0]) / qh[0]]
            nd, ns = rm("NEE", "default"), rm("NEE", src)
            if np.isfinite(nd) and np.isfinite(ns):
                n_nee += 1
                nee += int(ns <= (1.0 + nee_tolerance) * nd)
        row = {"source": src, "sites": n_both, "both_better": both,
               "mean_rmse_change_pct": float(np.mean(changes)) if changes else np.nan,
               "nee_sites": n_nee, "nee_kept": nee}
        if not hits.empty:
            h = hits[hits.source == src]
            per_site = h.groupby("site")
            row["at_bound_per_site"] = float(per_site.apply(lambda g: int((g.at_bound & g.moved).sum())).mean())
            row["at_bound_any_per_site"] = float(per_site.at_bound.sum().mean())
            row["moved_per_site"] = float(per_site.moved.sum().mean())
            if trust_radius > 0:
                d = hits[hits.source == "default"].set_index(["site", "parameter"]).unit
                dist = (h.set_index(["site", "parameter"]).unit - d).abs()
                row["at_trust_edge_per_site"] = float((dist >= trust_radius - bound_tol).groupby(level=0).sum().mean())
        out.append(row)
    return pd.DataFrame(out)
