"""Energy-balance closure of observed turbulent fluxes (Bowen-ratio preserving, FLUXNET2015 style).

Eddy-covariance towers measure less turbulent energy than the available
energy they see: Qle + Qh falls short of Rnet - Qg (by 20-30 % at a typical
site). A land model closes its energy balance by construction, so fitting it
to the uncorrected fluxes rewards parameters that throw energy away (a high
albedo, a low roughness). The closure here rescales Qle and Qh of each day by
one factor, keeping their ratio (the Bowen ratio) and the evaporative
fraction::

    ratio_d    = (Rnet - Qg) / (Qle + Qh)        on good days
    ratio      = centred 31-day running median of ratio_d (>= 5 good days), else the site median
    Qle_closed = ratio * Qle,  Qh_closed = ratio * Qh

as in the FLUXNET2015 energy-balance-corrected series (Pastorello et al.
2020, ``LE_CORR``/``H_CORR``; their window is +-15 days). A good day has
measured Qle, Qh and Rnet, turbulent and available energy both above
``min_energy_w_m2``, and a ratio inside ``ratio_range``. Daily Qg is small; a
site without a Qg series uses Qg = 0 (said in the notes). A site without Rnet
cannot be closed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: days in the centred running window of the closure ratio (FLUXNET2015: +-15 days)
WINDOW_DAYS = 31
#: fewest good days in a window for its own median; else the site median is used
MIN_GOOD_DAYS = 5


@dataclass
class Closure:
    """Closed daily fluxes of one site (W m-2) and the ratio applied (1)."""

    qle_w_m2: np.ndarray
    qh_w_m2: np.ndarray
    mask: np.ndarray  # days where Qle and Qh were measured and a ratio exists
    ratio: np.ndarray
    n_good_days: int
    notes: list[str] = field(default_factory=list)


def bowen_closure(qle_w_m2, qh_w_m2, rnet_w_m2, qg_w_m2=None, measured=None, *, min_energy_w_m2: float = 20.0,
                  ratio_range: tuple[float, float] = (0.5, 3.0)) -> Closure | None:
    """Bowen-ratio-preserving closure of daily Qle and Qh; None when no day qualifies.

    ``measured``: dict with boolean day masks for ``Qle``, ``Qh``, ``Rnet``
    (and ``Qg``); missing entries mean finite values count as measured.
    """
    qle = np.asarray(qle_w_m2, float)
    qh = np.asarray(qh_w_m2, float)
    rnet = np.asarray(rnet_w_m2, float)
    measured = measured or {}
    notes: list[str] = []

    def ok(name, v):
        m = measured.get(name)
        return np.isfinite(v) & (np.asarray(m, bool) if m is not None else True)

    if qg_w_m2 is None or not np.any(ok("Qg", np.asarray(qg_w_m2, float))):
        qg = np.zeros_like(rnet)
        qg_ok = np.ones_like(rnet, dtype=bool)
        notes.append("no ground heat flux observed: available energy taken as Rnet (Qg = 0)")
    else:
        qg = np.asarray(qg_w_m2, float)
        qg_ok = ok("Qg", qg)
        # a day without Qg still closes, with Qg = 0 (daily Qg is a few W m-2)
        qg = np.where(qg_ok, qg, 0.0)
    turb = qle + qh
    avail = rnet - qg
    both = ok("Qle", qle) & ok("Qh", qh)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = avail / turb
    good = both & ok("Rnet", rnet) & (turb > min_energy_w_m2) & (avail > min_energy_w_m2)
    good &= (r >= ratio_range[0]) & (r <= ratio_range[1])
    if not good.any():
        return None
    series = pd.Series(np.where(good, r, np.nan))
    med = series.rolling(WINDOW_DAYS, center=True, min_periods=MIN_GOOD_DAYS).median().to_numpy()
    site_median = float(np.nanmedian(r[good]))
    ratio = np.where(np.isfinite(med), med, site_median)
    return Closure(qle * ratio, qh * ratio, both, ratio, int(good.sum()), notes)
