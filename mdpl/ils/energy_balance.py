"""The surface energy balance, solved for one surface temperature per column.

f(Ts) = Rnet(Ts) - H(Ts) - LE(Ts) - G(Ts) = 0 is solved with a fixed number
of Newton iterations from the previous step's Ts, so the solution is a
differentiable function of parameters and forcing. Every flux is written once,
in :func:`_balance`, which the iterations and the final evaluation share.
Latent heat has five parts: wet-canopy evaporation (limited by the
interception store through an exact exponential depletion), open-water
evaporation from a pond at the potential rate over the water it covers
(limited by the pond the same way, :mod:`mdpl.ils.ponding`), transpiration (no
negative values, and never more than the root zone can supply: a smooth
quartic minimum with ``tr_supply``, so the minimum stomatal conductance cannot
empty dry soil), soil evaporation and snow sublimation (both allow dew/frost).

The ground heat flux is the conductive flux from the surface to the first
soil node, G = g_ground (Ts - T1), computed from the soil temperature profile
and not as a residual; ``residual`` = Rnet - H - LE - G at the final Ts is what
the Newton iterations left unbalanced (the surface itself stores no heat).
Saturation humidity: :mod:`mdpl.thermo` (Bolton 1980, q = 0.622 e / P).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from mdpl import thermo
from mdpl.ils import constants as C

#: latent heat of vaporisation and of sublimation (J kg-1)
_LV = C.LATENT_VAPORISATION
_LS = C.LATENT_SUBLIMATION
#: surface emissivity x Stefan-Boltzmann constant (W m-2 K-4)
_EPS_SIGMA = C.EMISSIVITY * C.STEFAN_BOLTZMANN
#: demand / supply above which transpiration equals the supply (keeps r**4 finite)
_R_MAX = 1.0e4
_TINY = 1.0e-30


def qsat(t_k: torch.Tensor, psurf_pa: torch.Tensor) -> torch.Tensor:
    """Saturation specific humidity (kg kg-1) over water (:func:`mdpl.thermo.saturation_specific_humidity`)."""
    return thermo.saturation_specific_humidity(t_k, psurf_pa)


@dataclass
class SurfaceTerms:
    """Per-step coefficients of the balance; all (batch,) tensors.

    ``rad_in``: absorbed SW + eps LW (W m-2); ``g_heat``: rho cp ga (W m-2 K-1);
    ``g_ground``: conductance to the first soil node (W m-2 K-1); ``t_soil1``: its temperature (K);
    ``cq``: epsilon e_s0 / P (kg kg-1), so qsat(Ts) = cq exp(a (Ts - T0) / (Ts - T_pole));
    ``rho_g_soil``, ``rho_g_snow``, ``rho_g_transp``, ``rho_g_wet``: air density x conductance
    (kg m-2 s-1 per unit specific humidity) of soil evaporation, sublimation, transpiration and
    fully wet canopy; ``wc_rate``: interception store / dt (kg m-2 s-1); ``wet_k_dt``:
    rho_g_wet dt / capacity, so wet-canopy evaporation is wc_rate (1 - exp(-wet_k_dt dq)).
    ``tr_supply``: the most transpiration (kg m-2 s-1) the root zone can deliver this step
    (zero when every rooted layer is at wilting point). ``pond_rate``, ``pond_k_dt``, ``rho_g_pond``:
    the pond's store / dt, its depletion coefficient and its potential conductance x cover (for dew),
    from :func:`mdpl.ils.ponding.evaporation_coefficients`.
    """

    rad_in: torch.Tensor
    tair: torch.Tensor
    qair: torch.Tensor
    cq: torch.Tensor
    g_heat: torch.Tensor
    g_ground: torch.Tensor
    t_soil1: torch.Tensor
    rho_g_soil: torch.Tensor
    rho_g_snow: torch.Tensor
    rho_g_transp: torch.Tensor
    rho_g_wet: torch.Tensor
    wc_rate: torch.Tensor
    wet_k_dt: torch.Tensor
    tr_supply: torch.Tensor
    pond_rate: torch.Tensor
    pond_k_dt: torch.Tensor
    rho_g_pond: torch.Tensor


class SurfaceSolution(NamedTuple):
    """The balance at the solved Ts: temperatures (K), energy fluxes (W m-2), water fluxes (kg m-2 s-1)."""

    ts: torch.Tensor
    rnet: torch.Tensor
    qh: torch.Tensor
    qle: torch.Tensor
    qg: torch.Tensor
    residual: torch.Tensor  # Rnet - Qh - Qle - Qg
    e_wet: torch.Tensor
    e_tr: torch.Tensor
    e_soil: torch.Tensor
    e_snow: torch.Tensor
    e_pond: torch.Tensor


def _supply_limited(demand, supply):
    """Transpiration = smooth minimum of atmospheric ``demand`` and root-zone ``supply`` (kg m-2 s-1).

    e = demand / (1 + (demand/supply)^4)^(1/4): within 1e-6 relative of the demand while it is
    below a twentieth of the supply, never above the supply, exactly zero when the supply is zero.
    Returns (e, de/d(demand) = (1 + r^4)^(-5/4)).
    """
    r = (demand / supply.clamp_min(_TINY)).clamp_max(_R_MAX)
    g = torch.pow(1.0 + r**4, -0.25)
    g2 = g * g
    return supply * r * g, g2 * g2 * g


def _balance(t: SurfaceTerms, ts: torch.Tensor, with_slope: bool):
    """Every flux at surface temperature ``ts``, the imbalance f and (``with_slope``) -df/dTs.

    Returns (f, slope or None, SurfaceSolution at ``ts``).
    """
    inv = torch.reciprocal(ts - thermo.T_POLE_K)
    ab = thermo.BOLTON_A * thermo.BOLTON_B_K
    qs = t.cq * torch.exp(thermo.BOLTON_A - ab * inv)  # = epsilon e_s(ts) / P
    dq = qs - t.qair
    dq_pos = dq.clamp_min(0.0)
    depl = torch.exp(-t.wet_k_dt * dq_pos)
    e_wet = t.wc_rate * (1.0 - depl) + t.rho_g_wet * (dq - dq_pos)  # store-limited evaporation, or dew
    e_tr, de_tr = _supply_limited(t.rho_g_transp * dq_pos, t.tr_supply)
    e_soil = t.rho_g_soil * dq
    e_snow = t.rho_g_snow * dq
    depl_p = torch.exp(-t.pond_k_dt * dq_pos)
    e_pond = t.pond_rate * (1.0 - depl_p) + t.rho_g_pond * (dq - dq_pos)  # store-limited, or dew on the water
    t4 = ts**4
    rnet = t.rad_in - _EPS_SIGMA * t4
    qh = t.g_heat * (ts - t.tair)
    qle = _LV * (e_wet + e_tr + e_soil + e_pond) + _LS * e_snow
    qg = t.g_ground * (ts - t.t_soil1)
    f = rnet - qh - qle - qg
    slope = None
    if with_slope:
        dqs = qs * inv * inv * ab  # d qsat / d Ts
        de_veg = torch.where(dq > 0, t.rho_g_transp * de_tr + t.wc_rate * t.wet_k_dt * depl, t.rho_g_wet)
        de_pond = torch.where(dq > 0, t.pond_rate * t.pond_k_dt * depl_p, t.rho_g_pond)
        d_le = (_LV * (de_veg + t.rho_g_soil + de_pond) + _LS * t.rho_g_snow) * dqs
        slope = 4.0 * _EPS_SIGMA * t4 / ts + t.g_heat + t.g_ground + d_le
    sol = SurfaceSolution(ts=ts, rnet=rnet, qh=qh, qle=qle, qg=qg, residual=f,
                          e_wet=e_wet, e_tr=e_tr, e_soil=e_soil, e_snow=e_snow, e_pond=e_pond)
    return f, slope, sol


def solve_surface(t: SurfaceTerms, ts0: torch.Tensor, iterations: int) -> SurfaceSolution:
    """``iterations`` Newton steps for Ts from ``ts0``; the fluxes at the final Ts."""
    ts = ts0
    for _ in range(iterations):
        f, slope, _ = _balance(t, ts, True)
        ts = ts + f / slope
    return _balance(t, ts, False)[2]
