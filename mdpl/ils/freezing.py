"""Frozen soil: freezing and thawing of the soil water, with the latent heat of fusion, and what ice does.

Each layer carries its total water theta (liquid + ice, m3 m-3) and its ice
(as the volume of water it melts to, m3 m-3). After heat conduction (and
snowmelt), a layer whose temperature T* crossed 0 degC exchanges phase with
the energy that crossing carries, in the explicit scheme of CLM4.5 (Oleson et
al. 2013, section 6.2): the potential C (T_f - T*) / L_f (kg m-2; C the layer's
heat capacity, J m-2 K-1) freezes liquid when positive, capped by the liquid
above the most that can stay unfrozen at T*, and melts ice when negative,
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


def max_liquid(t_k: torch.Tensor, theta_sat, psi_sat_m, b) -> torch.Tensor:
    """Most liquid water (m3 m-3) that stays unfrozen at ``t_k`` (K); the porosity at or above 0 degC.

    ``theta_sat``, ``psi_sat_m`` (negative, m), ``b``: the column's Clapp-Hornberger parameters, (batch, 1).
    """
    x = C.LATENT_FUSION * (C.T_FREEZE - t_k) / (C.GRAVITY * t_k * psi_sat_m.abs())
    x = torch.where(x > 1.0, x, torch.ones_like(x))  # x <= 1: no depression below the air-entry suction
    return (theta_sat * x ** (-1.0 / b)).clamp_min(C.THETA_RES)


def phase_change(tsoil, heat_cap, theta, ice, dz_mm, theta_sat, psi_sat_m, b):
    """Freeze or thaw each layer with the heat of its crossing of 0 degC.

    ``tsoil`` (K), ``heat_cap`` (J m-2 K-1), ``theta`` (total water) and ``ice`` (m3 m-3): (batch, layer);
    ``dz_mm``: kg m-2 per unit theta per layer. Returns (tsoil, ice, frozen): ``frozen`` is the ice made
    this step (kg m-2 per layer, negative when ice melted), which released L_f x frozen of heat.
    """
    potential = heat_cap * (C.T_FREEZE - tsoil) * (1.0 / C.LATENT_FUSION)
    liquid_above = (theta - ice - max_liquid(tsoil, theta_sat, psi_sat_m, b)).clamp_min(0.0) * dz_mm
    frozen = torch.where(potential > 0.0, torch.minimum(potential, liquid_above),
                         torch.maximum(potential, -ice * dz_mm))
    return tsoil + frozen * C.LATENT_FUSION / heat_cap, ice + frozen / dz_mm, frozen
