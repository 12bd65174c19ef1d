"""Heat conduction through the four soil layers (explicit, zero flux at the bottom) and snowmelt.

Heat capacity and conductivity depend on soil water and its ice (freezing and
thawing themselves: :mod:`mdpl.ils.freezing`). The snow pack is
thermally part of the top layer: it adds an insulating resistance between the
surface and the first soil node, and when the top layer warms above freezing
under snow the excess heat melts snow first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdpl.ils import constants as C



#: thermal conductivity of dry soil (W m-1 K-1) and its rise from dry to saturated (W m-1 K-1)
COND_DRY = 0.4
COND_WET_RISE = 1.2


def layer_properties(theta: torch.Tensor, ice, dz_m: torch.Tensor, theta_sat=C.THETA_SAT):
    """Heat capacity x thickness (J m-2 K-1) and conductivity (W m-1 K-1) per layer.

    ``theta``: total water (liquid + ice), ``ice``: its frozen part (as melt water), m3 m-3, (batch, layer)
    (``ice`` may be 0.0); ``theta_sat``: porosity (m3 m-3), a number or (batch, 1); solids fill the rest.
    Conductivity rises linearly with saturation from dry to saturated soil (Johansen's Kersten number
    for frozen soil, Ke = S_r), and ice raises the saturated value by Johansen's (1975) geometric-mean
    ratio (k_ice / k_liq)^(theta_sat x ice fraction of the water).
    """
    heat_cap = (C.HEAT_CAP_SOLIDS * (1.0 - theta_sat) + C.HEAT_CAP_WATER * (theta - ice) + C.HEAT_CAP_ICE * ice) * dz_m
    frozen_gain = (COND_DRY + COND_WET_RISE) * (torch.pow(C.COND_ICE / C.COND_LIQUID, theta_sat * ice / theta) - 1.0)
    cond = COND_DRY + ((COND_WET_RISE + frozen_gain) / theta_sat) * theta
    return heat_cap, cond


def ground_conductance(cond_top: torch.Tensor, swe_mm: torch.Tensor) -> torch.Tensor:
    """Conductance (W m-2 K-1) from the surface to the first soil node, through any snow."""
    resist = (0.5 * C.SOIL_DZ_M[0]) / cond_top + swe_mm.clamp_min(0.0) * (1.0 / (C.SNOW_DENSITY * C.SNOW_CONDUCTIVITY))
    return 1.0 / resist


def step_temperature(tsoil, heat_cap, cond, qg, dt_s, inv_node_dist):
    """Advance layer temperatures (batch, layer) one explicit step; ``qg`` (W m-2) enters the top."""
    flux = (cond[:, :-1] + cond[:, 1:]) * (0.5 * inv_node_dist) * (tsoil[:, :-1] - tsoil[:, 1:])
    net = torch.cat([qg.unsqueeze(-1), flux], dim=-1) - F.pad(flux, (0, 1))
    return tsoil + net * dt_s / heat_cap


def snowmelt(tsoil, heat_cap, swe_mm):
    """Melt (kg m-2 per step) from the heat of the top layer above freezing; returns (tsoil, melt)."""
    excess = heat_cap[:, 0] * (tsoil[:, 0] - C.T_FREEZE).clamp_min(0.0) * (1.0 / C.LATENT_FUSION)
    melt = torch.minimum(excess, swe_mm.clamp_min(0.0))
    cooling = melt * C.LATENT_FUSION / heat_cap[:, 0]
    return tsoil - F.pad(cooling.unsqueeze(-1), (0, tsoil.shape[1] - 1)), melt
