"""Skill metrics on paired observed/modelled series, NaN-aware.

Every function takes ``obs`` and ``sim`` arrays of the same shape and an
optional boolean ``mask`` (True = use); pairs where either is NaN are
dropped. All return floats (NaN when fewer than two pairs remain).

- RMSE and bias (sim - obs) are in the flux's own units (e.g. W m-2).
- R is Pearson's correlation; NSE = 1 - SSE / SS_obs (1 is perfect);
  KGE = 1 - sqrt((r-1)^2 + (alpha-1)^2 + (beta-1)^2) with alpha = sd_sim/sd_obs
  and beta = mean_sim/mean_obs (Gupta et al. 2009; 1 is perfect).
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("rmse", "r", "nse", "kge", "bias", "n")
#: +1 where larger is better, -1 where smaller is better, 0 where closer to 0 is better
BETTER = {"rmse": -1, "r": 1, "nse": 1, "kge": 1, "bias": 0}


def _pairs(obs, sim, mask=None) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(obs, dtype=float).ravel()
    s = np.asarray(sim, dtype=float).ravel()
    if o.shape != s.shape:
        raise ValueError(f"obs and sim differ in size: {o.size} vs {s.size}")
    ok = np.isfinite(o) & np.isfinite(s)
    if mask is not None:
        ok &= np.asarray(mask, dtype=bool).ravel()
    return o[ok], s[ok]


def rmse(obs, sim, mask=None) -> float:
    o, s = _pairs(obs, sim, mask)
    return float(np.sqrt(np.mean((s - o) ** 2))) if o.size >= 2 else math.nan


def bias(obs, sim, mask=None) -> float:
    o, s = _pairs(obs, sim, mask)
    return float(np.mean(s - o)) if o.size >= 2 else math.nan


def pearson_r(obs, sim, mask=None) -> float:
    o, s = _pairs(obs, sim, mask)
    if o.size < 2 or o.std() == 0 or s.std() == 0:
        return math.nan
    return float(np.corrcoef(o, s)[0, 1])


def nse(obs, sim, mask=None) -> float:
    o, s = _pairs(obs, sim, mask)
    if o.size < 2:
        return math.nan
    ss = np.sum((o - o.mean()) ** 2)
    return float(1.0 - np.sum((s - o) ** 2) / ss) if ss > 0 else math.nan


def kge(obs, sim, mask=None) -> float:
    o, s = _pairs(obs, sim, mask)
    if o.size < 2 or o.std() == 0 or o.mean() == 0:
        return math.nan
    r = pearson_r(o, s)
    if not math.isfinite(r):
        return math.nan
    alpha = s.std() / o.std()
    beta = s.mean() / o.mean()
    return float(1.0 - math.sqrt((r - 1) ** 2 + (alpha - 1) ** 2 + (beta - 1) ** 2))


def all_metrics(obs, sim, mask=None) -> dict[str, float]:
    """RMSE, R, NSE, KGE, bias and the pair count ``n`` in one dict."""
    o, s = _pairs(obs, sim, mask)
    return {
        "rmse": rmse(o, s),
        "r": pearson_r(o, s),
        "nse": nse(o, s),
        "kge": kge(o, s),
        "bias": bias(o, s),
        "n": int(o.size),
    }


def taylor_stats(obs, sim, mask=None) -> dict[str, float]:
    """Statistics a Taylor diagram plots: normalised SD, R and centred RMS difference.

    ``sd_ratio`` = sd_sim / sd_obs, ``crmsd`` = centred RMS difference / sd_obs;
    they satisfy crmsd^2 = 1 + sd_ratio^2 - 2 sd_ratio R (the law of cosines).
    """
    o, s = _pairs(obs, sim, mask)
    if o.size < 2 or o.std() == 0:
        return {"sd_ratio": math.nan, "r": math.nan, "crmsd": math.nan}
    sd_ratio = s.std() / o.std()
    r = pearson_r(o, s)
    crmsd = np.sqrt(np.mean(((s - s.mean()) - (o - o.mean())) ** 2)) / o.std()
    return {"sd_ratio": float(sd_ratio), "r": float(r), "crmsd": float(crmsd)}
