"""Frozen soil: freezing and thawing of the soil water, with the latent heat of fusion, and what ice does.

Each layer carries its total water theta (liquid + ice, m3 m-3) and its ice
(as the volume of water it melts to, m3 m-3). After heat conduction (and
snowmelt), a layer whose temperature T* crossed 0 degC exchanges phase with
the energy that crossing carries, in the explicit scheme of CLM4.5 (Oleson et
al. 2013, section 6.2): the potential C (T_f - T*) / L_f (kg m-2; C the layer's
heat capacity, J m-2 K-1) freezes liquid when positive, capped by the liquid
above the most that can stay unfrozen at the end-of-step temperature (CLM4.5
takes it at T*, which is unstable: see :func:`phase_change`), and melts ice when negative,
capped by the ice present; the layer temperature then moves by L_f x (ice
change) / C, so energy is conserved to rounding and T never overshoots 0 degC.
The unfrozen water left at T < T_f is the freezing-point depression of the
soil's matric potential (Niu & Yang 2006, J. Hydrometeor. 7:937; CLM4.5
section 6.2): theta_liq,max = theta_sat (L_f (T_f - T) / (g T |psi_sat|))^(-1/b), with
the Clapp-Hornberger psi_sat and b of each column's texture, floored at the
residual water content.

What ice changes elsewhere: heat capacity and conductivity
(:func:`mdpl.ils.soil_thermal.layer_properties`), hydraulic conductivity by
:func:`ice_impedance` (:mod:`mdpl.ils.hydrology`), and only liquid water can
be transpired, evaporated or drained.
"""

from __future__ import annotations

import torch

from mdpl.ils import constants as C


def ice_impedance(ice: torch.Tensor, theta_sat) -> torch.Tensor:
    """Factor (1) on hydraulic conductivity: 10^(-Omega F_ice), F_ice = ice volume / porosity (CLM4.5)."""
    f_ice = (ice * (C.RHO_WATER / C.RHO_ICE) / theta_sat).clamp(0.0, 1.0)
    return torch.exp((-C.ICE_IMPEDANCE * C.LOG10) * f_ice)


def max_liquid(t_k: torch.Tensor, theta_sat, psi_sat_m, b, with_slope: bool = False):
    """Most liquid water (m3 m-3) that stays unfrozen at ``t_k`` (K); the porosity at or above 0 degC.

    ``theta_sat``, ``psi_sat_m`` (negative, m), ``b``: the column's Clapp-Hornberger parameters, (batch, 1).
    ``with_slope``: also return its derivative d theta_liq,max / dT (K-1), 0 where it is flat.
    """
    a = C.LATENT_FUSION / (C.GRAVITY * psi_sat_m.abs())  # m-1 x m: the Clapeyron suction per (T_f - T) / T
    x = a * (C.T_FREEZE - t_k) / t_k
    depressed = x > 1.0  # x <= 1: no depression below the air-entry suction
    x = torch.where(depressed, x, torch.ones_like(x))
    raw = theta_sat * x ** (-1.0 / b)
    liq = raw.clamp_min(C.THETA_RES)
    if not with_slope:
        return liq
    slope = torch.where(depressed & (raw > C.THETA_RES), liq * (a * C.T_FREEZE) / (b * x * t_k * t_k),
                        torch.zeros_like(liq))
    return liq, slope


def phase_change(tsoil, heat_cap, theta, ice, dz_mm, theta_sat, psi_sat_m, b):
    """Freeze or thaw each layer with the heat of its crossing of 0 degC.

    ``tsoil`` (K), ``heat_cap`` (J m-2 K-1), ``theta`` (total water) and ``ice`` (m3 m-3): (batch, layer);
    ``dz_mm``: kg m-2 per unit theta per layer. Returns (tsoil, ice, frozen): ``frozen`` is the ice made
    this step (kg m-2 per layer, negative when ice melted), which released L_f x frozen of heat.

    Freezing stops where the liquid left meets the unfrozen water of the end-of-step temperature T, not
    of T*: C (T - T*) = L_f dz (liquid - theta_liq,max(T)), solved by one Newton step from T* (the
    liquid above theta_liq,max(T*) divided by 1 + L_f dz / C x d theta_liq,max / dT). Capping at
    theta_liq,max(T*) alone, as CLM4.5 does, multiplies any change of T* by 1 - L_f dz / C x
    d theta_liq,max / dT (about -10 in a freezing loam), so the freezing layer's temperature flips from
    step to step and gradients through a frozen winter grow tenfold a step until they overflow.
    """
    potential = heat_cap * (C.T_FREEZE - tsoil) * (1.0 / C.LATENT_FUSION)
    liq_max, slope = max_liquid(tsoil, theta_sat, psi_sat_m, b, with_slope=True)
    warming = C.LATENT_FUSION * dz_mm / heat_cap  # K per unit theta frozen
    to_curve = (theta - ice - liq_max).clamp_min(0.0) * dz_mm / (1.0 + warming * slope)
    frozen = torch.where(potential > 0.0, torch.minimum(potential, to_curve),
                         torch.maximum(potential, -ice * dz_mm))
    return tsoil + frozen * C.LATENT_FUSION / heat_cap, ice + frozen / dz_mm, frozen
