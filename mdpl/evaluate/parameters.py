"""Where calibration put the parameters: positions in the unit cube and parameters pinned at a bound.

One map and one rule for every caller: :func:`unit_frame` puts physical
parameter columns into the unit cube of a parameter space, and
:func:`bound_side` says whether a unit-cube position lies within ``tol`` of
a bound (the chapters' bound tables and the credibility counts of
:mod:`mdpl.evaluate.credibility` both use them).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: a parameter is "on a bound" within this unit-cube distance of it
BOUND_TOL = 0.02


def unit_frame(values: pd.DataFrame, space) -> pd.DataFrame:
    """Physical parameter columns -> positions in ``space``'s unit cube (columns ``space.names``, same index).

    Columns may be named ``name`` or ``name [units]`` (as in ``parameters.csv``); other columns are ignored.
    """
    cols = {str(c).split(" [")[0]: c for c in values.columns}
    x = values[[cols[n] for n in space.names]].to_numpy(float)
    return pd.DataFrame(np.asarray(space.to_unit(x), float), index=values.index, columns=list(space.names))


def bound_side(u: float, tol: float = BOUND_TOL) -> str | None:
    """'lower' or 'upper' when the unit-cube position ``u`` is within ``tol`` of that bound, else None."""
    if u <= tol:
        return "lower"
    if 1.0 - u <= tol:
        return "upper"
    return None


def learned_unit_positions(calibration, space):
    """(site x parameter) positions of a :class:`CalibrationResult`'s parameters in ``space``'s unit cube."""
    values = pd.DataFrame(np.asarray(calibration.params, float), index=list(calibration.sites),
                          columns=list(calibration.param_names))
    return unit_frame(values, space)


def bound_hits(learned_unit, *, tol: float = BOUND_TOL):
    """Parameters that calibration pushed to within ``tol`` of a bound (unit-cube values).

    Returns a DataFrame with one row per (site, parameter, bound); a parameter
    pinned at a bound suggests the bounds (or the model structure) limit the
    fit, which a physically sensible calibration should rarely need.
    """
    rows = []
    for site, row in learned_unit.iterrows():
        for name, u in row.items():
            side = bound_side(u, tol)
            if side is not None:
                rows.append({"site": site, "parameter": name, "bound": side, "position": float(u)})
    return pd.DataFrame(rows, columns=["site", "parameter", "bound", "position"])
