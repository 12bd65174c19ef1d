"""Soil texture per site and its hydraulic parameters (Cosby et al. 1984 pedotransfer, Clapp-Hornberger form).

Texture: the site attributes ``soil_sand_fraction`` and ``soil_clay_fraction``
(mass fractions, 0..1; the reader fills them from a PLUMBER2 ``_site.nc`` where
present), else the IGBP default of :data:`IGBP_TEXTURE`: a loam (the USDA loam
class centroid) for every class except open shrublands (sandy loam, arid
substrates) and wetlands (silty clay loam). A site with only one of the two
takes the other from its IGBP default (silt is the rest).

Hydraulics: Cosby et al. (1984, Water Resour. Res. 20:682) Table 4
multivariate regressions, with fractions (the paper's percentages / 100):

- b = 3.10 + 15.7 clay - 0.3 sand (Clapp-Hornberger exponent, 1)
- psi_sat = -0.01 x 10^(1.54 - 0.95 sand + 0.63 silt) m (air-entry suction)
- theta_sat = 0.505 - 0.142 sand - 0.037 clay (m3 m-3)
- K_sat = 0.0254 / 3600 x 10^(-0.60 + 1.26 sand - 0.64 clay) m s-1 (from inches per hour)

Field capacity and wilting point are the Clapp-Hornberger water contents at
-33 kPa and -1.5 MPa. The calibrated ``ksat_factor`` multiplies K_sat (the
regression's scatter is about half a decade, Cosby et al. 1984 Table 5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from mdpl.errors import ModelError

#: (sand, clay) mass fractions of the default soil per IGBP class
LOAM = (0.42, 0.20)
IGBP_TEXTURE: dict[str, tuple[float, float]] = {"OSH": (0.65, 0.10), "WET": (0.10, 0.34)}
SAND_ATTR, CLAY_ATTR = "soil_sand_fraction", "soil_clay_fraction"
#: matric suction (m of water) at field capacity (-33 kPa) and at the wilting point (-1.5 MPa)
PSI_FIELD_CAPACITY_M = 3.37
PSI_WILTING_M = 152.9
#: cm of water per m, and m s-1 per inch per hour
_CM_PER_M = 100.0
_M_S_PER_IN_H = 0.0254 / 3600.0


class SoilHydraulics(NamedTuple):
    """Hydraulic parameters of each column's soil, (batch, 1) tensors (shared by all layers)."""

    theta_sat: torch.Tensor  # porosity, m3 m-3
    psi_sat_m: torch.Tensor  # air-entry matric potential (negative), m
    b: torch.Tensor  # Clapp-Hornberger exponent, 1
    ksat_m_s: torch.Tensor  # saturated hydraulic conductivity, m s-1
    theta_fc: torch.Tensor  # field capacity, m3 m-3
    theta_wilt: torch.Tensor  # wilting point, m3 m-3


def site_texture(site: str, igbp: str, attrs: dict) -> tuple[float, float]:
    """(sand, clay) mass fractions of a site: its attributes, else the IGBP default."""
    default = IGBP_TEXTURE.get(str(igbp).strip().upper(), LOAM)
    out = []
    for name, dflt in ((SAND_ATTR, default[0]), (CLAY_ATTR, default[1])):
        v = (attrs or {}).get(name, dflt)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ModelError(f"site {site}: attribute {name}={v!r} is not a number") from None
        if not 0.0 <= v <= 1.0:
            raise ModelError(f"site {site}: attribute {name}={v} must be a fraction in [0, 1]")
        out.append(v)
    if out[0] + out[1] > 1.0:
        raise ModelError(f"site {site}: sand ({out[0]}) + clay ({out[1]}) fractions exceed 1")
    return out[0], out[1]


def cosby_hydraulics(sand: torch.Tensor, clay: torch.Tensor, ksat_factor: torch.Tensor) -> SoilHydraulics:
    """Cosby et al. (1984) parameters for (batch,) sand and clay fractions; returned as (batch, 1)."""
    silt = 1.0 - sand - clay
    b = 3.10 + 15.7 * clay - 0.3 * sand
    psi_sat = -torch.pow(10.0, 1.54 - 0.95 * sand + 0.63 * silt) / _CM_PER_M
    theta_sat = 0.505 - 0.142 * sand - 0.037 * clay
    ksat = _M_S_PER_IN_H * torch.pow(10.0, -0.60 + 1.26 * sand - 0.64 * clay) * ksat_factor
    theta_fc = theta_sat * (PSI_FIELD_CAPACITY_M / psi_sat.abs()) ** (-1.0 / b)
    theta_wilt = theta_sat * (PSI_WILTING_M / psi_sat.abs()) ** (-1.0 / b)
    return SoilHydraulics(*(v.unsqueeze(-1) for v in (theta_sat, psi_sat, b, ksat, theta_fc, theta_wilt)))
