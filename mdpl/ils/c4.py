"""The C4 fraction of a site's canopy, from its IGBP class and climate, overridable per site.

Rule (documented, deterministic):

1. A site attribute ``c4_fraction`` (0..1) wins when present.
2. Otherwise C4 fraction = herbaceous share of the IGBP class (:data:`HERBACEOUS_SHARE`:
   the grass layer's share of the canopy; 0 for forests, wetlands and crops, whose crop
   type the IGBP class does not say) x the climate's C4 share after Still et al. (2003,
   Global Biogeochem. Cycles 17:1006): of the growing-season months (mean air temperature
   above :data:`GROWING_MONTH_K` and precipitation above :data:`WET_MONTH_MM`), the
   fraction warm enough for C4 grasses (mean above :data:`C4_MONTH_K`, the C3/C4
   crossover of Collatz et al. 1998).

Months come from the forcing's first year (the whole record when shorter).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mdpl.errors import ModelError

#: grass-layer share of the canopy per IGBP class (1); classes absent here have none
HERBACEOUS_SHARE: dict[str, float] = {
    "GRA": 1.0, "SAV": 0.7, "WSA": 0.4, "OSH": 0.3, "CSH": 0.2, "CVM": 0.3,
}
#: a month counts towards the growing season above this mean air temperature (K)
GROWING_MONTH_K = 278.15
#: ... and above this precipitation (kg m-2 per month), Still et al. (2003)
WET_MONTH_MM = 25.0
#: a growing month favours C4 grasses above this mean air temperature (K), Still et al. (2003)
C4_MONTH_K = 295.15
ATTRIBUTE = "c4_fraction"


def climate_c4_share(time: pd.DatetimeIndex, tair_k: np.ndarray, precip_kg_m2_s: np.ndarray,
                     time_step_s: float) -> float:
    """Fraction (0..1) of the growing-season months warm enough for C4 grasses (0 without a growing season)."""
    frame = pd.DataFrame({"t": np.asarray(tair_k, float), "p": np.asarray(precip_kg_m2_s, float) * time_step_s},
                         index=time)
    first = frame[frame.index < frame.index[0] + pd.Timedelta(days=365)]
    months = first.groupby(first.index.month).agg(t=("t", "mean"), p=("p", "sum"))
    growing = (months["t"] > GROWING_MONTH_K) & (months["p"] > WET_MONTH_MM)
    if not growing.any():
        return 0.0
    return float((growing & (months["t"] > C4_MONTH_K)).sum() / growing.sum())


def c4_fraction(site: str, igbp: str, attrs: dict, time: pd.DatetimeIndex, tair_k: np.ndarray,
                precip_kg_m2_s: np.ndarray, time_step_s: float) -> float:
    """C4 fraction of one site's canopy (0..1) by the rule of this module."""
    if attrs and ATTRIBUTE in attrs:
        try:
            v = float(attrs[ATTRIBUTE])
        except (TypeError, ValueError):
            raise ModelError(f"site {site}: attribute {ATTRIBUTE}={attrs[ATTRIBUTE]!r} is not a number") from None
        if not 0.0 <= v <= 1.0:
            raise ModelError(f"site {site}: attribute {ATTRIBUTE}={v} must lie in [0, 1]")
        return v
    share = HERBACEOUS_SHARE.get(str(igbp).strip().upper(), 0.0)
    if share == 0.0:
        return 0.0
    return share * climate_c4_share(time, tair_k, precip_kg_m2_s, time_step_s)
