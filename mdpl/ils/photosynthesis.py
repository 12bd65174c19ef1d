"""Canopy photosynthesis, C3 (Collatz et al. 1991) and C4 (Collatz et al. 1992), and Ball-Berry conductance.

Big-leaf scaling as in SiB2 (Sellers et al. 1996): canopy capacity is the
top-leaf Vcmax times (1 - exp(-k LAI)) / k, and light use is the absorbed PAR
of the canopy. Leaf temperature is taken as air temperature (one Newton solve
per step). Intercellular CO2 follows from the Ball-Berry closure with zero
intercept, ci = cs (1 - 1.6 / (m hs)), so the slope m acts on both ci and
conductance. The leaf-surface relative humidity hs is taken halfway between
the air's and saturation (the leaf boundary layer is moistened by
transpiration); using the air's humidity directly collapses ci in dry air.

C3: Rubisco-limited (Jc), light-limited (Je) and export-limited (Js) rates
with the CO2 compensation point set by photorespiration (Gamma* = O2 / 2 tau).
C4: Rubisco (Vcmax), light (alpha_4 APAR) and PEP-carboxylase (kp ci / P)
limits with no photorespiration (the CO2-concentrating mechanism), so C4
keeps assimilating in heat where C3 photorespiration climbs. A column's
canopy is a mix with C4 fraction ``c4_frac`` (:mod:`mdpl.ils.c4`); the C4
part uses the Ball-Berry slope times :data:`C4_SLOPE_RATIO`.
Soil-water stress ``beta`` scales net assimilation inside the time loop.
"""

from __future__ import annotations

import math

import torch

from mdpl.ils import constants as C

# -- C3, Collatz et al. (1991, Agric. For. Meteorol. 54:107) Table 2, as in SiB2 (Sellers et al. 1996) ----------
#: Michaelis-Menten constant of Rubisco for CO2 at 25 degC (Pa)
KC25_PA = 30.0
#: Michaelis-Menten constant of Rubisco for O2 at 25 degC (Pa)
KO25_PA = 30000.0
#: CO2/O2 specificity ratio of Rubisco at 25 degC (1)
TAU25 = 2600.0
#: Q10 temperature factors (1) of Vcmax, Kc, Ko and tau
Q10_VCMAX, Q10_KC, Q10_KO, Q10_TAU = 2.0, 2.1, 1.2, 0.57
#: co-limitation curvature (1) of Jc with Je, and of that with Js (Collatz et al. 1991)
THETA_CE_C3, THETA_PS = 0.98, 0.95
#: export (triose-phosphate) limit Js as a fraction of Vcmax (1)
JS_FRAC = 0.5
#: high- and low-temperature inhibition of C3 Vcmax: steepness (K-1) and midpoint (K), SiB2
INHIBIT_SLOPE_HIGH_K, INHIBIT_SLOPE_LOW_K = 0.3, 0.3
T_HIGH_C3_K, T_LOW_C3_K = C.T_HIGH_K, C.T_LOW_K

# -- C4, Collatz et al. (1992, Aust. J. Plant Physiol. 19:519), constants as in CLM4.5 (Oleson et al. 2013) ------
#: quantum efficiency of C4 photosynthesis (mol CO2 per mol absorbed photons)
QUANTUM_EFFICIENCY_C4 = 0.05
#: initial slope of the C4 CO2 response (PEP carboxylase) per unit Vcmax25 at 25 degC (1: umol m-2 s-1 per
#: umol m-2 s-1 of Vcmax25 per mol mol-1 of ci)
KP_PER_VCMAX25 = 20000.0
#: Q10 of the PEP-carboxylase slope kp (1), Oleson et al. (2013)
Q10_KP = 1.8
#: co-limitation curvature (1) of the C4 Rubisco and light limits
THETA_CE_C4 = 0.80
#: high- and low-temperature inhibition of C4 Vcmax: midpoints (K) and low-side steepness (K-1); C4 grasses
#: stop below ~15 degC (Collatz et al. 1992; Oleson et al. 2013 eq. 8.9)
T_HIGH_C4_K, T_LOW_C4_K = 313.15, 288.15
INHIBIT_SLOPE_LOW_C4_K = 0.2
#: C4 dark respiration / Vcmax (Oleson et al. 2013)
LEAF_RESP_FRAC_C4 = 0.025
#: Ball-Berry slope of C4 over C3 plants (4 / 9, Sellers et al. 1996; Oleson et al. 2013)
C4_SLOPE_RATIO = 4.0 / 9.0
#: lowest ci/cs the Ball-Berry closure may give (1)
MIN_CI_RATIO = 0.15
#: CO2 molar ratio per ppm
PPM = 1e-6


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


def _inhibition(tair_k, t_high_k, slope_high, t_low_k, slope_low):
    return (1.0 + torch.exp(slope_high * (tair_k - t_high_k))) * (1.0 + torch.exp(slope_low * (t_low_k - tair_k)))


def _ci_ratio(bb_slope, rel_humidity):
    return (1.0 - 1.6 / (bb_slope * leaf_surface_humidity(rel_humidity))).clamp_min(MIN_CI_RATIO)


def c3_photosynthesis(vcmax25, bb_slope, tair_k, apar, co2_ppm, rel_humidity, psurf_pa, scale):
    """C3 gross assimilation and dark respiration (umol m-2 s-1, ground area) and ci/cs."""
    tc = tair_k - C.T_FREEZE
    inhibit = _inhibition(tair_k, T_HIGH_C3_K, INHIBIT_SLOPE_HIGH_K, T_LOW_C3_K, INHIBIT_SLOPE_LOW_K)
    vcmax = vcmax25 * _q10(tc, Q10_VCMAX) / inhibit * scale
    kc = KC25_PA * _q10(tc, Q10_KC)
    ko = KO25_PA * _q10(tc, Q10_KO)
    gamma = C.O2_PA / (2.0 * TAU25 * _q10(tc, Q10_TAU))  # CO2 compensation point without dark respiration, Pa
    ci_ratio = _ci_ratio(bb_slope, rel_humidity)
    ci = ci_ratio * co2_ppm * PPM * psurf_pa
    jc = vcmax * (ci - gamma) / (ci + kc * (1.0 + C.O2_PA / ko))
    je = C.QUANTUM_EFFICIENCY * apar * (ci - gamma) / (ci + 2.0 * gamma)
    js = JS_FRAC * vcmax
    gross = _colimit(_colimit(jc.clamp_min(0.0), je.clamp_min(0.0), THETA_CE_C3), js, THETA_PS)
    return gross, C.LEAF_RESP_FRAC * vcmax, ci_ratio


def c4_photosynthesis(vcmax25, bb_slope, tair_k, apar, co2_ppm, rel_humidity, scale):
    """C4 gross assimilation and dark respiration (umol m-2 s-1, ground area), Collatz et al. (1992)."""
    tc = tair_k - C.T_FREEZE
    inhibit = _inhibition(tair_k, T_HIGH_C4_K, INHIBIT_SLOPE_HIGH_K, T_LOW_C4_K, INHIBIT_SLOPE_LOW_C4_K)
    vcmax = vcmax25 * _q10(tc, Q10_VCMAX) / inhibit * scale
    kp = KP_PER_VCMAX25 * vcmax25 * _q10(tc, Q10_KP) * scale
    ci_frac = _ci_ratio(C4_SLOPE_RATIO * bb_slope, rel_humidity) * co2_ppm * PPM  # ci / P, mol mol-1
    je = QUANTUM_EFFICIENCY_C4 * apar
    jp = kp * ci_frac
    gross = _colimit(_colimit(vcmax, je, THETA_CE_C4), jp, THETA_PS)
    return gross, LEAF_RESP_FRAC_C4 * vcmax


def canopy_photosynthesis(vcmax25, bb_slope, tair_k, sw_down, co2_ppm, rel_humidity, lai, psurf_pa, c4_frac=None):
    """Unstressed gross canopy photosynthesis and its pieces for a C3/C4 mix.

    Returns ``(gross, leaf_resp, gross_g, resp_g, ci_ratio)`` in umol m-2 s-1 (ground area): gross
    assimilation and dark respiration, the same weighted by each pathway's Ball-Berry slope over the
    C3 slope (what drives stomatal conductance), and the C3 ci/cs.
    """
    light = 1.0 - torch.exp(-C.EXTINCTION * lai)
    scale = light / C.EXTINCTION
    apar = C.PAR_UMOL_PER_J * sw_down.clamp_min(0.0) * light
    g3, r3, ci_ratio = c3_photosynthesis(vcmax25, bb_slope, tair_k, apar, co2_ppm, rel_humidity, psurf_pa, scale)
    if c4_frac is None:
        return g3, r3, g3, r3, ci_ratio
    g4, r4 = c4_photosynthesis(vcmax25, bb_slope, tair_k, apar, co2_ppm, rel_humidity, scale)
    f3 = 1.0 - c4_frac
    gross, resp = f3 * g3 + c4_frac * g4, f3 * r3 + c4_frac * r4
    w4 = c4_frac * C4_SLOPE_RATIO
    return gross, resp, f3 * g3 + w4 * g4, f3 * r3 + w4 * r4, ci_ratio


def conductance_coefficients(bb_slope, bb_intercept, rel_humidity, co2_ppm, lai, tair_k, psurf_pa):
    """Coefficients of canopy conductance g (m s-1) = k1 * max(An, 0) + k0, An in umol m-2 s-1.

    Ball-Berry: g = m An h / cs + b LAI (mol m-2 s-1), converted with R T / P.
    """
    mol_to_m = C.R_GAS * tair_k / psurf_pa
    k1 = bb_slope * leaf_surface_humidity(rel_humidity) / co2_ppm * mol_to_m
    k0 = bb_intercept * lai * mol_to_m
    return k1, k0


def soil_water_stress(theta, theta_crit, root_frac, theta_wilt=C.THETA_WILT):
    """Root-weighted stress factor in [0, 1] and its per-layer values (Sellers-type linear ramp).

    ``theta`` (batch, layer), ``theta_crit`` (batch, 1), ``root_frac`` (batch, layer), m3 m-3.
    """
    per_layer = ((theta - theta_wilt) / (theta_crit - theta_wilt)).clamp(0.0, 1.0)
    return (per_layer * root_frac).sum(-1), per_layer
