"""Canopy C3 photosynthesis (Collatz et al. 1991) and Ball-Berry stomatal conductance.

Big-leaf scaling as in SiB2 (Sellers et al. 1996): canopy capacity is the
top-leaf Vcmax times (1 - exp(-k LAI)) / k, and light use is the absorbed PAR
of the canopy. Leaf temperature is taken as air temperature, which decouples
photosynthesis from the surface energy balance (one Newton solve per step).
Intercellular CO2 follows from the Ball-Berry closure with zero intercept,
ci = cs (1 - 1.6 / (m hs)), so the slope m acts on both ci and conductance.
The leaf-surface relative humidity hs is taken halfway between the air's and
saturation (the leaf boundary layer is moistened by transpiration); using the
air's humidity directly collapses ci in dry air.
Soil-water stress ``beta`` scales net assimilation inside the time loop.
"""

from __future__ import annotations

import math

import torch

from mdpl.ils import constants as C


def _q10(tc: torch.Tensor, q10: float) -> torch.Tensor:
    return torch.exp((tc - 25.0) * (math.log(q10) / 10.0))


def leaf_surface_humidity(rel_humidity: torch.Tensor) -> torch.Tensor:
    """Relative humidity at the leaf surface: halfway between the air's and saturation."""
    return 0.5 + 0.5 * rel_humidity.clamp(0.0, 1.0)


def _colimit(a: torch.Tensor, b: torch.Tensor, theta: float) -> torch.Tensor:
    """Smooth minimum of two rates: smaller root of theta J^2 - (a+b) J + a b = 0."""
    s = a + b
    disc = (s * s - 4.0 * theta * a * b).clamp_min(1e-12)
    return (s - torch.sqrt(disc)) / (2.0 * theta)


def canopy_photosynthesis(vcmax25, bb_slope, tair_k, sw_down, co2_ppm, rel_humidity, lai, psurf_pa):
    """Unstressed gross canopy photosynthesis and its pieces.

    Returns ``(gross, leaf_resp, ci_ratio)``: gross assimilation and dark
    respiration in umol m-2 s-1 (ground area) and ci/cs.
    """
    tc = tair_k - C.T_FREEZE
    inhibit = (1.0 + torch.exp(0.3 * (tair_k - C.T_HIGH_K))) * (1.0 + torch.exp(0.3 * (C.T_LOW_K - tair_k)))
    scale = (1.0 - torch.exp(-C.EXTINCTION * lai)) / C.EXTINCTION
    vcmax = vcmax25 * _q10(tc, 2.0) / inhibit * scale
    kc = 30.0 * _q10(tc, 2.1)
    ko = 30000.0 * _q10(tc, 1.2)
    gamma = C.O2_PA / (2.0 * 2600.0 * _q10(tc, 0.57))
    h = leaf_surface_humidity(rel_humidity)
    ci_ratio = (1.0 - 1.6 / (bb_slope * h)).clamp_min(0.15)
    ci = ci_ratio * co2_ppm * 1e-6 * psurf_pa
    jc = vcmax * (ci - gamma) / (ci + kc * (1.0 + C.O2_PA / ko))
    apar = C.PAR_UMOL_PER_J * sw_down.clamp_min(0.0) * (1.0 - torch.exp(-C.EXTINCTION * lai))
    je = C.QUANTUM_EFFICIENCY * apar * (ci - gamma) / (ci + 2.0 * gamma)
    js = 0.5 * vcmax
    gross = _colimit(_colimit(jc.clamp_min(0.0), je.clamp_min(0.0), 0.98), js, 0.95)
    return gross, C.LEAF_RESP_FRAC * vcmax, ci_ratio


def conductance_coefficients(bb_slope, bb_intercept, rel_humidity, co2_ppm, lai, tair_k, psurf_pa):
    """Coefficients of canopy conductance g (m s-1) = k1 * max(An, 0) + k0, An in umol m-2 s-1.

    Ball-Berry: g = m An h / cs + b LAI (mol m-2 s-1), converted with R T / P.
    """
    mol_to_m = C.R_GAS * tair_k / psurf_pa
    k1 = bb_slope * leaf_surface_humidity(rel_humidity) / co2_ppm * mol_to_m
    k0 = bb_intercept * lai * mol_to_m
    return k1, k0


def soil_water_stress(theta, theta_crit, root_frac):
    """``theta`` (batch, layer), ``theta_crit`` (batch, 1), ``root_frac`` (batch, layer)."""
    """Root-weighted stress factor in [0, 1] and its per-layer values (Sellers-type linear ramp)."""
    per_layer = ((theta - C.THETA_WILT) / (theta_crit - C.THETA_WILT)).clamp(0.0, 1.0)
    return (per_layer * root_frac).sum(-1), per_layer
