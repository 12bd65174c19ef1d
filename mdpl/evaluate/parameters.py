"""Where calibration put the parameters: positions in the unit cube and parameters pinned at a bound."""

from __future__ import annotations

import numpy as np
import pandas as pd


def learned_unit_positions(calibration, space):
    """(site x parameter) positions of a :class:`CalibrationResult`'s parameters in ``space``'s unit cube."""
    idx = [calibration.param_names.index(n) for n in space.names]
    u = np.asarray(space.to_unit(np.asarray(calibration.params, float)[:, idx]), float)
    return pd.DataFrame(u, index=list(calibration.sites), columns=list(space.names))


def bound_hits(learned_unit, *, tol: float = 0.02):
    """Parameters that calibration pushed to within ``tol`` of a bound (unit-cube values).

    Returns a DataFrame with one row per (site, parameter, bound); a parameter
    pinned at a bound suggests the bounds (or the model structure) limit the
    fit, which a physically sensible calibration should rarely need.
    """
    rows = []
    for site, row in learned_unit.iterrows():
        for name, u in row.items():
            if u <= tol:
                rows.append({"site": site, "parameter": name, "bound": "lower", "position": float(u)})
            elif u >= 1 - tol:
                rows.append({"site": site, "parameter": name, "bound": "upper", "position": float(u)})
    return pd.DataFrame(rows, columns=["site", "parameter", "bound", "position"])
