"""The surface energy balance, solved for one surface temperature per column.

f(Ts) = Rnet(Ts) - H(Ts) - LE(Ts) - G(Ts) = 0 is solved with a fixed number
of Newton iterations from the previous step's Ts, so the solution is a
differentiable function of parameters and forcing. Latent heat has four
parts: wet-canopy evaporation (limited by the interception store through an
exact exponential depletion), transpiration (no negative values, and never
more than the root zone can supply: a smooth quartic minimum with
``tr_supply``, so the minimum stomatal conductance cannot empty dry soil), soil
evaporation and snow sublimation (both allow dew/frost). The ground heat
flux returned is Rnet - H - LE at the final Ts, so |Rnet - Qg - Qh - Qle| is
zero up to rounding; the remaining Newton residual (the mismatch with the
conductive flux into the soil) is reported as ``energy_residual``.
Saturation humidity uses Bolton's (1980) vapour pressure with q = 0.622 e / P.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mdpl.ils import constants as C

_A = 17.67
_B = 243.5  # K, so T - 29.65 = T_c + 243.5
_ES0 = 611.2  # Pa


def qsat(t_k: torch.Tensor, psurf_pa: torch.Tensor) -> torch.Tensor:
    """Saturation specific humidity (kg kg-1) over water."""
    return (0.622 * _ES0 / psurf_pa) * torch.exp(_A * (t_k - C.T_FREEZE) / (t_k - 29.65))


@dataclass
class SurfaceTerms:
    """Per-step coefficients of the balance; all (batch,) tensors.

    ``rad_in``: absorbed SW + eps LW (W m-2); ``g_heat``: rho cp ga (W m-2 K-1);
    ``g_ground``: conductance to the first soil node (W m-2 K-1); ``t_soil1``: its temperature;
    ``rho_g_soil``, ``rho_g_snow``, ``rho_g_transp``, ``rho_g_wet``: air density x conductance
    (kg m-2 s-1 per unit specific humidity) of soil evaporation, sublimation, transpiration and
    fully wet canopy; ``wc_rate``: interception store / dt (kg m-2 s-1); ``wet_k_dt``:
    rho_g_wet dt / capacity, so wet-canopy evaporation is wc_rate (1 - exp(-wet_k_dt dq)).
    ``tr_supply``: the most transpiration (kg m-2 s-1) the root zone can deliver this step
    (zero when every rooted layer is at wilting point).
    """

    rad_in: torch.Tensor
    tair: torch.Tensor
    qair: torch.Tensor
    cq: torch.Tensor  # 0.622 * 611.2 / P
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


_LV = C.LATENT_VAPORISATION
_LS = C.LATENT_SUBLIMATION
_EPS_SIGMA = C.EMISSIVITY * C.STEFAN_BOLTZMANN


_CONST_CACHE: dict = {}


def _consts(like: torch.Tensor):
    """Scalar constants as 0-dim tensors of ``like``'s dtype/device (python scalars cost an extra cast per op)."""
    key = (like.dtype, like.device)
    k = _CONST_CACHE.get(key)
    if k is None:
        vals = dict(t0=29.65, a=_A, ab=_A * _B, es4=4.0 * _EPS_SIGMA, lv_ab=_LV * _A * _B)
        k = _CONST_CACHE[key] = {n: torch.tensor(v, dtype=like.dtype, device=like.device) for n, v in vals.items()}
    return k


def _qsat_and_slope(ts, cq, k):
    inv = torch.reciprocal(ts - k["t0"])
    qs = cq * torch.exp(k["a"] - k["ab"] * inv)
    return qs, qs * inv * inv * k["ab"]


_R_MAX = 1.0e4  # demand / supply above which transpiration equals the supply (keeps r**4 finite)
_TINY = 1.0e-30


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


def _vegetation_evap(t: SurfaceTerms, dq, neg_wet_k):
    """Wet-canopy evaporation + transpiration (kg m-2 s-1), dew onto the canopy when dq < 0."""
    dq_pos = dq.clamp_min(0.0)
    depl = torch.exp(neg_wet_k * dq_pos)
    e_wet = t.wc_rate - t.wc_rate * depl + t.rho_g_wet * (dq - dq_pos)
    e_tr, _ = _supply_limited(t.rho_g_transp * dq_pos, t.tr_supply)
    return e_wet, e_tr, depl


def solve_surface(t: SurfaceTerms, ts0: torch.Tensor, iterations: int):
    """Newton iterations for Ts from ``ts0``; returns a dict of fluxes at the final Ts.

    Keys: ts (K), rnet, qh, qle, qg, residual (W m-2), e_wet, e_tr, e_soil, e_snow (kg m-2 s-1).
    The loop is written with fused ops (addcmul/addcdiv): it runs 4 times per step.
    """
    k = _consts(ts0)
    g_lin = _LV * t.rho_g_soil + _LS * t.rho_g_snow  # latent heat linear in dq (soil, snow)
    a1 = t.g_heat + t.g_ground
    const = t.rad_in + t.g_heat * t.tair + t.g_ground * t.t_soil1 + g_lin * t.qair
    g_lin_ab = g_lin * k["ab"]
    wet_slope = t.wc_rate * t.wet_k_dt
    neg_wet_k = -t.wet_k_dt
    ts = ts0
    for _ in range(iterations):
        inv = torch.reciprocal(ts - k["t0"])
        qs = t.cq * torch.exp(torch.addcmul(k["a"], k["ab"], inv, value=-1.0))
        dq = qs - t.qair
        dq_pos = dq.clamp_min(0.0)
        depl = torch.exp(neg_wet_k * dq_pos)
        e_veg = torch.addcmul(t.wc_rate, t.wc_rate, depl, value=-1.0)  # wet canopy, dq > 0
        e_veg = torch.addcmul(e_veg, t.rho_g_wet, dq - dq_pos)  # dew, dq < 0
        e_tr, de_tr = _supply_limited(t.rho_g_transp * dq_pos, t.tr_supply)
        e_veg = e_veg + e_tr  # transpiration, capped by the root-zone supply
        t3 = ts * ts * ts
        f = torch.addcmul(const, t3, ts, value=-_EPS_SIGMA)
        f = torch.addcmul(f, a1, ts, value=-1.0)
        f = torch.addcmul(f, g_lin, qs, value=-1.0)
        f = torch.add(f, e_veg, alpha=-_LV)
        de_veg = torch.where(dq > 0, torch.addcmul(t.rho_g_transp * de_tr, wet_slope, depl), t.rho_g_wet)
        latent_slope = torch.addcmul(g_lin_ab, k["lv_ab"], de_veg) * qs * (inv * inv)  # d(LE)/dTs
        slope = torch.addcmul(a1, k["es4"], t3) + latent_slope  # = -df/dTs > 0
        ts = torch.addcdiv(ts, f, slope)
    qs, _ = _qsat_and_slope(ts, t.cq, k)
    dq = qs - t.qair
    e_wet, e_tr, _ = _vegetation_evap(t, dq, neg_wet_k)
    e_soil = t.rho_g_soil * dq
    e_snow = t.rho_g_snow * dq
    qle = _LV * (e_wet + e_tr + e_soil) + _LS * e_snow
    rnet = t.rad_in - _EPS_SIGMA * ts**4
    qh = t.g_heat * (ts - t.tair)
    qg = rnet - qh - qle
    residual = qg - t.g_ground * (ts - t.t_soil1)
    return dict(ts=ts, rnet=rnet, qh=qh, qle=qle, qg=qg, residual=residual,
                e_wet=e_wet, e_tr=e_tr, e_soil=e_soil, e_snow=e_snow)
