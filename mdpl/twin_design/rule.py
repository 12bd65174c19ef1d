"""The design's hidden truth: PFT defaults moved by a known rule of two climate indices of the site.

::

    zT = tanh((T - 12 degC) / 10 degC)             T: mean air temperature of the record (static tair_mean_k)
    zD = tanh(ln D),  D = 0.5 SWdown / (lambda P)   Budyko's radiative dryness index, net radiation taken as
                                                   half the mean global radiation (swdown_mean_w_m2, precip_mm_yr)
    u_true[p] = clip(u_default[p] + a_T[p] zT + a_D[p] zD, 0.02, 0.98)   (unit cube of the parameter box)

The rule is synthetic (a test of the method, not a claim about vegetation),
though its signs follow the literature: lower Vcmax25 in warm climates
(thermal acclimation), a lower stomatal slope and deeper roots where it is dry
(Lin et al. 2015; Fan et al. 2017), brighter canopies where it is warm.
"""

from __future__ import annotations

import numpy as np

from mdpl.errors import ConfigError
from mdpl.thermo import T_FREEZE_K

#: the hidden rule: parameter -> (a_T, a_D), unit-cube change per unit of zT and zD (see the module docstring)
RULE: dict[str, tuple[float, float]] = {
    "vcmax25": (-0.3, 0.0),
    "bb_slope": (0.0, -0.3),
    "root_depth_m": (0.0, 0.3),
    "albedo_canopy": (0.2, 0.0),
}

#: latent heat of vaporisation (J kg-1) in the dryness index
LAMBDA_J_KG = 2.45e6
#: centre (degC) and scale (degC) of the temperature index zT
T_CENTRE_C, T_SCALE_C = 12.0, 10.0
#: floor on the annual precipitation (mm yr-1) so the dryness index of a near-rainless record stays finite
PRECIP_FLOOR_MM_YR = 10.0
#: seconds in a year (365.25 days)
YEAR_S = 365.25 * 86400.0
#: the true parameters stay this far inside the unit cube (a bound the generator cannot reach exactly)
UNIT_MARGIN = 0.02


def climate_indices(features) -> dict[str, float]:
    """The rule's inputs from a site's :class:`~mdpl.data.features.SiteFeatures` static attributes.

    ``tair_c`` (degC, mean of the daily air temperature), ``dryness`` (Budyko's radiative dryness index
    0.5 SWdown / (lambda P), dimensionless) and the two squashed indices ``zT``, ``zD`` in (-1, 1).
    """
    t_c = float(features.static_var("tair_mean_k")) - T_FREEZE_K
    p_kg_m2_s = max(float(features.static_var("precip_mm_yr")), PRECIP_FLOOR_MM_YR) / YEAR_S
    d = 0.5 * float(features.static_var("swdown_mean_w_m2")) / (LAMBDA_J_KG * p_kg_m2_s)
    return {"tair_c": t_c, "dryness": d, "zT": float(np.tanh((t_c - T_CENTRE_C) / T_SCALE_C)),
            "zD": float(np.tanh(np.log(d)))}


def pft_defaults(space, igbp) -> np.ndarray:
    """The PFT default parameters (n_sites, P), physical, clipped into the box, of sites of IGBP classes ``igbp``."""
    return np.stack([np.clip(space.defaults(g), space.lower, space.upper) for g in igbp])


def rule_truth(space, features_list, rule: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """True parameters (n_sites, P), physical: each site's PFT defaults moved by ``rule`` (:data:`RULE`)."""
    rule = RULE if rule is None else rule
    bad = [p for p in rule if p not in space.names]
    if bad:
        raise ConfigError(f"design rule: parameter(s) {', '.join(bad)} not in the model's space "
                          f"({', '.join(space.names)})")
    rows = []
    for f in features_list:
        u = np.asarray(space.to_unit(pft_defaults(space, [f.igbp])[0]), float)
        z = climate_indices(f)
        for p, (a_t, a_d) in rule.items():
            j = space.index(p)
            u[j] = np.clip(u[j] + a_t * z["zT"] + a_d * z["zD"], UNIT_MARGIN, 1.0 - UNIT_MARGIN)
        rows.append(np.clip(np.asarray(space.from_unit(u), float), space.lower, space.upper))
    return np.stack(rows)
