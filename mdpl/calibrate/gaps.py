"""How far each surrogate strays from the land model at the parameters calibrated through it.

A generator trained through a surrogate may find parameters where the
surrogate is wrong in its favour. :func:`surrogate_gap` scores the surrogate
against the land model itself at the calibrated parameters (daily series of
every surrogate task, all days), and :func:`gap_warnings` turns a gap larger
than a fraction of the observed variability into a warning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdpl.calibrate.sources import KIND_OF
from mdpl.evaluate.metrics import all_metrics


def surrogate_gap(surrogates: dict, calibrations: dict, feats, series: dict[str, dict[str, pd.DataFrame]]) -> list[dict]:
    """Daily RMSE/R between each surrogate and the land model at that surrogate's calibrated parameters.

    ``surrogates``: kind -> trained surrogate; ``calibrations``: source ->
    :class:`~mdpl.calibrate.result.CalibrationResult`; ``series``: site ->
    source -> the land model's daily series. One row per site, surrogate
    route and task (site, source, surrogate, flux, then the metrics).
    """
    import torch

    rows = []
    for src, kind in KIND_OF.items():
        if src not in calibrations or kind not in surrogates:
            continue
        sur, res = surrogates[kind], calibrations[src]
        for i, f in enumerate(feats):
            with torch.no_grad():
                pred = sur.predict(f, torch.as_tensor(res.params[i : i + 1], dtype=torch.float64))
            lsm = series[str(f.site)][src]
            for t in sur.tasks:
                if t not in lsm:
                    continue
                s = pred[t][0].detach().cpu().numpy().astype(float)
                m = all_metrics(lsm[t].reindex(f.days).to_numpy(float), s)
                rows.append({"site": str(f.site), "source": src, "surrogate": kind, "flux": t, **m})
    return rows


def gap_warnings(gap: list[dict], feats, threshold: float, tasks=("Qle", "Qh")) -> list[str]:
    """A message for every site and calibrated flux (``tasks``) where the surrogate strays from the land model at
    the calibrated parameters by more than ``threshold`` x the observed daily standard deviation (the calibration
    then optimised the surrogate's error, not the model). Uncalibrated fluxes are in surrogate_gap.json only."""
    std = {}
    for f in feats:
        for k, v in f.obs.items():
            m = np.asarray(f.obs_mask.get(k, np.isfinite(v)), bool)
            if m.sum() > 1:
                std[(str(f.site), k)] = float(np.std(np.asarray(v, float)[m]))
    out = []
    for r in gap:
        if r["flux"] not in tasks:
            continue
        sd = std.get((r["site"], r["flux"]))
        if sd and np.isfinite(r.get("rmse", np.nan)) and r["rmse"] > threshold * sd:
            out.append(f"site {r['site']}, {r['source']}: the {r['surrogate']} surrogate is {r['rmse']:.3g} "
                       f"(RMSE) from the land model for {r['flux']} at the calibrated parameters, "
                       f"{r['rmse'] / sd:.2f} x the observed std (threshold {threshold:g}); "
                       "the calibration may exploit surrogate error")
    return out
