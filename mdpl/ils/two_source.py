"""Two-source surface energy balance: a canopy at Tv over the ground (soil, pond, snow) at Tg.

Selected by ``lsm.energy_balance: two_source`` (the one-skin balance is
:mod:`mdpl.ils.energy_balance`). In the manner of CLM4.5 (Oleson et al. 2013,
NCAR/TN-503+STR, ch. 4-5) and MATSIRO (Takata et al. 2003):

- **Canopy air space.** Leaves and ground exchange heat and vapour with the air
  among the leaves, which exchanges with the air above through the aerodynamic
  conductance ga (:mod:`mdpl.ils.turbulence`). Its temperature and humidity
  are the conductance-weighted means of the air above, the leaves and the
  ground (the canopy air stores nothing), so H = H_v + H_g exactly.
- **Conductances** (m s-1): leaf boundary layer of the whole canopy
  gb = LAI Cv sqrt(u* / d_leaf) (CLM4.5 eq. 5.122, Cv = 0.01 m s-1/2,
  d_leaf = 0.04 m); ground to canopy air gg = u* Cs / (1 - W) with
  Cs = Cs_bare W + Cs_dense (1 - W), W = exp(-LAI) (Sakaguchi & Zeng 2009,
  CLM4.5 eq. 5.116-5.118). The factor 1 / (1 - W) is ours: the above-canopy
  ga of this model already reaches a bare ground (its roughness is the
  site's), so the under-canopy resistance vanishes as LAI -> 0 and the
  balance tends to the one-source one. u* = k u / ln((z - d) / z0m) (neutral).
- **Latent heat.** Transpiration (stomata in series with gb, from the dry
  leaves) and wet-canopy evaporation (gb, store-limited) leave the leaves at
  Tv; soil evaporation (gg in series with the soil resistance), the pond
  (gg, store-limited) and snow sublimation leave the ground at Tg. Dew forms
  on the leaves through the whole boundary layer. The canopy air humidity is
  weighted by the conductances of the fluxes (unlimited ones when the leaves
  evaporate: the store and supply limits then act on each flux, as in the
  one-source balance), so dew is bounded by the vapour that reaches the
  canopy air and the water each flux removes is exactly its latent heat.
- **Radiation.** Shortwave absorbed by the canopy and by the ground is given
  by the caller (the canopy's share of the scene, Beer's law). Longwave: the
  canopy has emissivity eps_v = 1 - exp(-LAI), no reflection, and emits
  eps_v sigma Tv^4 up and down; the ground (emissivity
  :data:`~mdpl.ils.constants.EMISSIVITY`) absorbs what reaches it through
  the gaps and from the canopy, reflects the rest, and emits up; the canopy
  absorbs eps_v of what the ground sends up. Net LW of canopy + ground is
  exactly LWdown - LWup at the top.
- **Ground heat flux** Qg = g_ground (Tg - T1), conduction to the first soil
  node (through any snow), computed from the soil temperature profile.
- **Canopy heat storage:** none (the leaves' heat capacity is neglected, as in
  CLM4.5), so the canopy balance Rn_v - H_v - LE_v = 0 and the column's heat
  budget is the soil's and the snow's.

Solved by a fixed number of 2x2 Newton iterations on (Tv, Tg) with the
analytic Jacobian (differentiable, batched). ``residual`` is what the
iterations leave of Rnet - H - LE - Qg (canopy + ground).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from mdpl import thermo
from mdpl.ils import constants as C
from mdpl.ils.energy_balance import _supply_limited

#: leaf boundary-layer coefficient Cv (m s-1/2) and leaf dimension (m), CLM4.5 eq. 5.122 and its PFT table
LEAF_BL_COEF = 0.01
LEAF_DIMENSION_M = 0.04
#: under-canopy turbulent transfer coefficient of a dense canopy (1), Sakaguchi & Zeng (2009), CLM4.5 eq. 5.118
CS_DENSE = 0.004
#: bare-ground transfer coefficient Cs_bare = (k / a) (z0g u* / nu)^(-0.45): a (1), z0g (m), nu (m2 s-1),
#: CLM4.5 eq. 5.117 (z0g of bare soil, kinematic viscosity of air)
CS_BARE_A = 0.13
GROUND_Z0M_M = 0.01
AIR_VISCOSITY_M2_S = 1.5e-5
#: largest temperature change (K) of one Newton iteration (keeps the first iterate sane after a jump in forcing)
MAX_NEWTON_STEP_K = 25.0
#: emissivity of the ground (soil, water, snow)
EMISSIVITY_GROUND = C.EMISSIVITY
_SIGMA = C.STEFAN_BOLTZMANN
_LV = C.LATENT_VAPORISATION
_LS = C.LATENT_SUBLIMATION


def friction_velocity_ratio(ch_neutral: torch.Tensor) -> torch.Tensor:
    """u* / U (1) of the neutral log profile, from the neutral heat transfer coefficient of
    :func:`mdpl.ils.turbulence.neutral_transfer`, ch = k^2 / (ln_m (ln_m + kB^-1)), solved for ln_m."""
    kb = C.KB_INV
    ln_m = 0.5 * (-kb + torch.sqrt(kb * kb + 4.0 * C.VON_KARMAN**2 / ch_neutral))
    return C.VON_KARMAN / ln_m


def canopy_emissivity(lai: torch.Tensor) -> torch.Tensor:
    """Longwave emissivity (= absorptivity) of the canopy, 1 - exp(-LAI)."""
    return 1.0 - torch.exp(-lai)


def scene_emissivity(eps_veg: torch.Tensor) -> torch.Tensor:
    """Emissivity of canopy + ground seen from above, 1 - (1 - eps_g) (1 - eps_v)^2: the part of LWdown that
    comes back up is what the ground reflects through the canopy gaps, both ways (the leaves reflect none)."""
    return 1.0 - (1.0 - EMISSIVITY_GROUND) * (1.0 - eps_veg) ** 2


def leaf_boundary_conductance(lai: torch.Tensor, ustar: torch.Tensor) -> torch.Tensor:
    """Leaf boundary-layer conductance of the whole canopy (m s-1, ground area): LAI Cv sqrt(u* / d_leaf)."""
    return lai * LEAF_BL_COEF * torch.sqrt(ustar * (1.0 / LEAF_DIMENSION_M))


def under_canopy_conductance(lai: torch.Tensor, ustar: torch.Tensor) -> torch.Tensor:
    """Conductance (m s-1) from the ground to the canopy air: u* Cs / (1 - W), W = exp(-LAI) (module doc)."""
    w = torch.exp(-lai)
    cs_bare = (C.VON_KARMAN / CS_BARE_A) * torch.pow(GROUND_Z0M_M * ustar * (1.0 / AIR_VISCOSITY_M2_S), -0.45)
    cs = cs_bare * w + CS_DENSE * (1.0 - w)
    return ustar * cs / (1.0 - w)


@dataclass
class TwoSourceTerms:
    """Per-step coefficients, (batch,) tensors.

    Radiation (W m-2): ``sw_veg``, ``sw_ground`` absorbed shortwave; ``lw_down``; ``eps_veg`` canopy emissivity.
    Heat (W m-2 K-1): ``h_air`` = rho cp ga, ``h_veg`` = rho cp gb, ``h_ground`` = rho cp gg; ``g_ground`` and
    ``t_soil1`` as in :class:`mdpl.ils.energy_balance.SurfaceTerms`. Vapour (kg m-2 s-1 per kg kg-1):
    ``w_air`` = rho ga; leaves: ``rho_g_transp`` (dry leaves, stomata + gb), ``rho_g_wet`` (gb), ``wc_rate``,
    ``wet_k_dt``, ``tr_supply``; ground: ``rho_g_soil``, ``rho_g_snow``, ``pond_rate``, ``pond_k_dt``,
    ``rho_g_pond`` (meanings as in SurfaceTerms, with the conductances to the canopy air).
    """

    sw_veg: torch.Tensor
    sw_ground: torch.Tensor
    lw_down: torch.Tensor
    eps_veg: torch.Tensor
    tair: torch.Tensor
    qair: torch.Tensor
    cq: torch.Tensor
    h_air: torch.Tensor
    h_veg: torch.Tensor
    h_ground: torch.Tensor
    w_air: torch.Tensor
    g_ground: torch.Tensor
    t_soil1: torch.Tensor
    rho_g_transp: torch.Tensor
    rho_g_wet: torch.Tensor
    wc_rate: torch.Tensor
    wet_k_dt: torch.Tensor
    tr_supply: torch.Tensor
    rho_g_soil: torch.Tensor
    rho_g_snow: torch.Tensor
    pond_rate: torch.Tensor
    pond_k_dt: torch.Tensor
    rho_g_pond: torch.Tensor


class TwoSourceSolution(NamedTuple):
    """The balance at the solved (Tv, Tg): temperatures (K), energy fluxes (W m-2), water fluxes (kg m-2 s-1).

    ``ts``: radiative surface temperature, from LWup = eps sigma Ts^4 + (1 - eps) LWdown with the scene's
    emissivity eps (:func:`scene_emissivity`; the ground's as LAI -> 0, the one-source skin's definition):
    Ts^4 is then a weighted mean of Tv^4 and Tg^4.
    """

    ts: torch.Tensor
    tv: torch.Tensor
    tg: torch.Tensor
    rnet: torch.Tensor
    qh: torch.Tensor
    qle: torch.Tensor
    qg: torch.Tensor
    residual: torch.Tensor  # Rnet - Qh - Qle - Qg (canopy + ground)
    e_wet: torch.Tensor
    e_tr: torch.Tensor
    e_soil: torch.Tensor
    e_snow: torch.Tensor
    e_pond: torch.Tensor


def _qsat(t: TwoSourceTerms, temp: torch.Tensor):
    """(qsat, d qsat / dT, 1 / (T - T_pole)) by Bolton's formula."""
    inv = torch.reciprocal(temp - thermo.T_POLE_K)
    ab = thermo.BOLTON_A * thermo.BOLTON_B_K
    qs = t.cq * torch.exp(thermo.BOLTON_A - ab * inv)
    return qs, qs * inv * inv * ab


def _balance(t: TwoSourceTerms, tv: torch.Tensor, tg: torch.Tensor, with_jacobian: bool):
    """Imbalances (f_v, f_g) of canopy and ground at (tv, tg), their Jacobian (or None) and the solution."""
    # canopy air space: conductance-weighted temperature and humidity
    s_h = t.h_air + t.h_veg + t.h_ground
    qv, dqsv = _qsat(t, tv)
    qg, dqsg = _qsat(t, tg)
    # the ground's vapour conductance: soil and snow both ways, the pond's potential rate (= its dew rate)
    w_g = t.rho_g_soil + t.rho_g_snow + t.rho_g_pond
    # whether the leaves evaporate (qsat(Tv) above the canopy air) does not depend on their own conductance:
    # evaporating, they have the unlimited conductance of transpiration and the wet part (rho gb wc / wmax);
    # taking dew, the whole canopy's boundary layer, so the canopy air humidity is that of the fluxes
    d_v = t.w_air * (qv - t.qair) + w_g * (qv - qg)
    w_v = torch.where(d_v > 0, t.rho_g_transp + t.wc_rate * t.wet_k_dt, t.rho_g_wet)
    inv_sw, inv_sh = 1.0 / (t.w_air + w_v + w_g), 1.0 / s_h
    # qsat - canopy air humidity, and T - canopy air temperature, without cancellation (a ground coupled
    # tightly to the canopy air, LAI -> 0, has h_ground >> h_air)
    dq_v = d_v * inv_sw
    dq_g = (t.w_air * (qg - t.qair) + w_v * (qg - qv)) * inv_sw
    # leaves
    dqv_pos = dq_v.clamp_min(0.0)
    depl = torch.exp(-t.wet_k_dt * dqv_pos)
    e_wet = t.wc_rate * (1.0 - depl) + t.rho_g_wet * (dq_v - dqv_pos)  # store-limited evaporation, or dew
    e_tr, de_tr = _supply_limited(t.rho_g_transp * dqv_pos, t.tr_supply)
    # ground
    dqg_pos = dq_g.clamp_min(0.0)
    e_soil = t.rho_g_soil * dq_g
    e_snow = t.rho_g_snow * dq_g
    depl_p = torch.exp(-t.pond_k_dt * dqg_pos)
    e_pond = t.pond_rate * (1.0 - depl_p) + t.rho_g_pond * (dq_g - dqg_pos)
    # longwave
    ev, eg = t.eps_veg, EMISSIVITY_GROUND
    sv4, sg4 = _SIGMA * tv**4, _SIGMA * tg**4
    lw_to_ground = (1.0 - ev) * t.lw_down + ev * sv4
    ground_up = eg * sg4 + (1.0 - eg) * lw_to_ground
    rn_v = t.sw_veg + ev * (t.lw_down + ground_up) - 2.0 * ev * sv4
    rn_g = t.sw_ground + eg * (lw_to_ground - sg4)
    lw_up = (1.0 - ev) * ground_up + ev * sv4
    h_v = t.h_veg * (t.h_air * (tv - t.tair) + t.h_ground * (tv - tg)) * inv_sh
    h_g = t.h_ground * (t.h_air * (tg - t.tair) + t.h_veg * (tg - tv)) * inv_sh
    le_v = _LV * (e_wet + e_tr)
    le_g = _LV * (e_soil + e_pond) + _LS * e_snow
    qgr = t.g_ground * (tg - t.t_soil1)
    f_v = rn_v - h_v - le_v
    f_g = rn_g - h_g - le_g - qgr
    jac = None
    if with_jacobian:
        dle_v = _LV * torch.where(dq_v > 0, t.rho_g_transp * de_tr + t.wc_rate * t.wet_k_dt * depl, t.rho_g_wet)
        de_pond = torch.where(dq_g > 0, t.pond_rate * t.pond_k_dt * depl_p, t.rho_g_pond)
        dle_g = _LV * (t.rho_g_soil + de_pond) + _LS * t.rho_g_snow
        r4v, r4g = 4.0 * sv4 / tv, 4.0 * sg4 / tg
        hvg = t.h_veg * t.h_ground * inv_sh
        j11 = (ev * (1.0 - eg) * ev - 2.0 * ev) * r4v - t.h_veg * t.h_air * inv_sh - hvg \
            - dle_v * dqsv * (t.w_air + w_g) * inv_sw
        j12 = ev * eg * r4g + hvg + dle_v * dqsg * w_g * inv_sw
        j21 = eg * ev * r4v + hvg + dle_g * dqsv * w_v * inv_sw
        j22 = -eg * r4g - t.h_ground * t.h_air * inv_sh - hvg - dle_g * dqsg * (t.w_air + w_v) * inv_sw - t.g_ground
        jac = (j11, j12, j21, j22)
    rnet = rn_v + rn_g
    qh, qle = h_v + h_g, le_v + le_g
    eps = scene_emissivity(ev)
    lw_emit = (lw_up - (1.0 - eps) * t.lw_down).clamp_min(1.0)
    ts = torch.pow(lw_emit / (eps * _SIGMA), 0.25)
    sol = TwoSourceSolution(ts=ts, tv=tv, tg=tg, rnet=rnet, qh=qh, qle=qle, qg=qgr, residual=f_v + f_g,
                            e_wet=e_wet, e_tr=e_tr, e_soil=e_soil, e_snow=e_snow, e_pond=e_pond)
    return (f_v, f_g), jac, sol


def solve_two_source(t: TwoSourceTerms, tv0: torch.Tensor, tg0: torch.Tensor, iterations: int) -> TwoSourceSolution:
    """``iterations`` 2x2 Newton steps for (Tv, Tg) from (tv0, tg0); the fluxes at the final temperatures."""
    tv, tg = tv0, tg0
    for _ in range(iterations):
        (f_v, f_g), (j11, j12, j21, j22), _ = _balance(t, tv, tg, True)
        det = j11 * j22 - j12 * j21  # > 0: both diagonals negative and dominant
        inv_det = 1.0 / det.clamp_min(1e-12)
        tv = tv + ((j12 * f_g - j22 * f_v) * inv_det).clamp(-MAX_NEWTON_STEP_K, MAX_NEWTON_STEP_K)
        tg = tg + ((j21 * f_v - j11 * f_g) * inv_det).clamp(-MAX_NEWTON_STEP_K, MAX_NEWTON_STEP_K)
    return _balance(t, tv, tg, False)[2]

