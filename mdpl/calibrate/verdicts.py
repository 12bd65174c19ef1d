"""Can a verdict be computed, and was it? Checks before any work and warnings after the land-model runs.

Before: every site needs measured days of each calibrated flux in both the
calibration and the held-out period (:func:`check_verdicts_possible`, a
:class:`~mdpl.errors.DataError` otherwise). After: held-out daily scores that
still came out missing (:func:`verdict_warnings`) and land-model runs with
non-finite output (:func:`non_finite_runs`) are listed as warnings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdpl.calibrate.targets import observed_daily
from mdpl.errors import DataError, MdplError


def calibrated_fluxes(cfg) -> list[str]:
    """The fluxes the calibration fits (non-zero task weight)."""
    return [k for k, w in cfg.calibration.task_weights.items() if w > 0]


def check_verdicts_possible(feats, split, cfg) -> None:
    """Every site needs measured days of each calibrated flux in both periods; else a DataError before any work.

    A record too short for a held-out period (the 28-day block split holds out
    every 4th block: under 85 days there is none) would otherwise give NaN
    for every held-out metric.
    """
    for f, (train, test) in zip(feats, split):
        for flux in calibrated_fluxes(cfg):
            try:
                _, measured, used = observed_daily(f, flux, cfg.data.corrected_fluxes)
            except MdplError:
                raise DataError(f"site {f.site}: no observed {flux} to calibrate against "
                                f"(calibration.task_weights names it)") from None
            for period, mask in (("calibration (train)", train), ("held-out (test)", test)):
                n = int((measured & np.asarray(mask, bool)).sum())
                if n == 0:
                    raise DataError(f"site {f.site}: no measured {used} days in the {period} period "
                                    f"(record {f.n_days} days, {int(np.asarray(mask, bool).sum())} in that period; "
                                    f"a held-out period needs at least 85 days of record); "
                                    f"no verdict could be computed, so nothing was run")


def verdict_warnings(records: list[dict], sources, cfg) -> list[str]:
    """Messages for every held-out daily score of a calibrated flux that is missing or not a number."""
    out = []
    fluxes = calibrated_fluxes(cfg)
    have = {(r["site"], r["flux"], r["source"]): r for r in records if r.get("period") == "test" and r.get("scale") == "daily"}
    sites = sorted({r["site"] for r in records})
    for site in sites:
        for flux in fluxes:
            for src in sources:
                r = have.get((site, flux, src))
                if r is None or not r.get("n") or not np.isfinite(float(r.get("rmse", np.nan))):
                    out.append(f"site {site}, {flux}, {src}: no held-out daily score "
                               f"({'no record' if r is None else str(r.get('n', 0)) + ' scored days'}); "
                               "the verdict for this site is missing")
    return out


def non_finite_runs(series: dict[str, dict[str, pd.DataFrame]]) -> list[str]:
    """Messages for every (site, source, flux) whose land-model run has non-finite daily values."""
    out = []
    for site, sims in series.items():
        for src, df in sims.items():
            for flux in df.columns:
                n = int((~np.isfinite(df[flux].to_numpy(float))).sum())
                if n:
                    out.append(f"site {site}, parameters {src}: the land model returned non-finite {flux} on {n} of {len(df)} days")
    return out
