"""An unconfined aquifer below the soil column, in the spirit of SIMGM (Niu et al. 2007, JGR 112:D07103).

State: the aquifer's water ``aquifer_kg_m2`` (kg m-2) counted from a full
aquifer (0: its water table at the base of the soil column; it never
exceeds 0, and holds :data:`~mdpl.ils.constants.AQUIFER_THICKNESS_M` x specific
yield x 1000 kg m-2 above its bottom). Each step, after the soil-water step:

- **water table depth** z_wt (m): the aquifer's own level,
  z_bot - aquifer / (1000 S_y), raised by the saturated thickness in the soil
  column above it (each layer's drainable pore space theta_sat - theta_fc,
  filled from the bottom up), so it rises into the soil of a wet column;
- **recharge / capillary rise** between the bottom soil layer and the aquifer:
  Darcy's law between the layer's node (depth z_n, suction h = -psi > 0) and
  the aquifer's water table, q = K (1 - h / (z_aq - z_n)) (Niu et al. 2007,
  eq. 4), positive down; it turns upward when the suction of the bottom layer
  exceeds its height above the water table: a shallow water table wets a
  drying column from below. The conductance is taken upstream: downward the
  layer's own K(theta) (as Niu et al. 2007); upward the water rises from the
  saturated water table through ever wetter soil, so K is the mean of the
  Campbell (1974) K(h) = K_sat (h / h_sat)^-n (n = 2 + 3/b) over the suction
  range h_sat..h (the matric flux potential divided by that range, Raats
  1970): K_up = K_sat (1 - x^(1-n)) / ((n - 1)(x - 1)), x = h / h_sat. (K of
  a dry node alone would let a water table 1 m down feed it well under the
  steady capillary rise that Gardner (1958) derived for such depths.)
  Downward it is bounded by the
  layer's water above residual (exact exponential depletion) and the room
  left in the aquifer after this step's baseflow; upward by the room in the layer and the aquifer's water;
- **baseflow** out of the aquifer, R = R_max exp(-f z_wt) (SIMTOP, Niu et al.
  2005; R_max and f of CLM4.0; wetlands and paddies have an impeded ceiling,
  :mod:`mdpl.ils.site_water`), bounded by the aquifer's water. Baseflow is the
  column's drainage (``Qsb``); the bottom of the soil column no longer drains
  freely.

Amounts are kg m-2 per step and (batch,) or (batch, layer) tensors.
"""

from __future__ import annotations

import torch

from mdpl.ils import constants as C
from mdpl.ils.freezing import ice_impedance

_DZ = torch.tensor(C.SOIL_DZ_M, dtype=torch.float64)
#: depth of the base of the soil column and of the bottom layer's node (m)
SOIL_BOTTOM_M = float(sum(C.SOIL_DZ_M))
BOTTOM_NODE_M = SOIL_BOTTOM_M - 0.5 * C.SOIL_DZ_M[-1]
#: aquifer water per m of water-table fall (kg m-2 m-1) and its least storage (kg m-2, empty aquifer)
KG_M2_PER_M = 1000.0 * C.AQUIFER_SPECIFIC_YIELD
AQUIFER_EMPTY_KG_M2 = -KG_M2_PER_M * C.AQUIFER_THICKNESS_M
_TINY = 1e-9


def layer_tops_m(like: torch.Tensor) -> torch.Tensor:
    """Depth (m) of the top of each soil layer, (layer,) on ``like``'s device and dtype."""
    dz = _DZ.to(like)
    return torch.cumsum(dz, 0) - dz


def aquifer_for_water_table(zwt_m: torch.Tensor) -> torch.Tensor:
    """Aquifer storage (kg m-2 from full) whose water table lies at depth ``zwt_m`` (>= the soil base)."""
    return -KG_M2_PER_M * (zwt_m - SOIL_BOTTOM_M).clamp(0.0, C.AQUIFER_THICKNESS_M)


def equilibrium_water_table_m(theta_bottom: torch.Tensor, theta_sat: torch.Tensor, psi_sat_m: torch.Tensor,
                              b: torch.Tensor) -> torch.Tensor:
    """Depth (m) of the water table in hydrostatic equilibrium with the bottom layer's water content.

    Zero recharge at the start: z_wt = z_n + |psi(theta_bottom)|, at most the aquifer's bottom
    (``theta_bottom`` etc. (batch, 1); returns (batch,)).
    """
    psi = psi_sat_m * (theta_bottom / theta_sat).clamp(0.01, 1.0) ** (-b)
    return (BOTTOM_NODE_M + psi.abs()).clamp_max(SOIL_BOTTOM_M + C.AQUIFER_THICKNESS_M).squeeze(-1)


def saturated_thickness_m(theta: torch.Tensor, theta_fc: torch.Tensor, theta_sat: torch.Tensor) -> torch.Tensor:
    """Thickness (m) of the saturated zone in the soil column, filled from the bottom layer up.

    A layer's share is its drainable water (theta - theta_fc) / (theta_sat - theta_fc) (0..1); a
    layer counts only as far as every layer below it is full (the product of their shares).
    """
    share = ((theta - theta_fc) / (theta_sat - theta_fc)).clamp(0.0, 1.0)
    dz = _DZ.to(theta)
    h = torch.zeros_like(theta[:, 0])
    below = torch.ones_like(h)
    for k in range(theta.shape[1] - 1, -1, -1):
        h = h + dz[k] * share[:, k] * below
        below = below * share[:, k]
    return h


def water_table_depth_m(aquifer_kg_m2: torch.Tensor, theta: torch.Tensor, theta_fc: torch.Tensor,
                        theta_sat: torch.Tensor) -> torch.Tensor:
    """Water-table depth (m below the surface): the aquifer's level, raised by the column's saturated zone."""
    return SOIL_BOTTOM_M - aquifer_kg_m2 * (1.0 / KG_M2_PER_M) - saturated_thickness_m(theta, theta_fc, theta_sat)


def groundwater_step(theta, aquifer_kg_m2, dz_mm, theta_fc, theta_sat, psi_sat_m, b, ksat_m_s, baseflow_max,
                     dt_s: float, ice=None):
    """Exchange with the aquifer and baseflow for one step.

    ``theta`` (batch, layer) after the soil-water step, liquid + ice; ``ice`` (batch, layer, m3 m-3 of
    melt water, or None: no ice): only the bottom layer's liquid water drains to or rises from the
    aquifer. Its suction is that of its liquid water, its conductivity is impeded by its ice
    (:func:`mdpl.ils.freezing.ice_impedance`, as in the soil column), recharge is bounded by its liquid
    above residual, and capillary rise by its pore space not taken by water or ice.
    ``dz_mm`` (layer,) layer thickness in kg m-2 of water per unit theta; hydraulics (batch, 1);
    ``baseflow_max`` (batch,) kg m-2 s-1.
    Returns (theta, aquifer, recharge (kg m-2 per step, negative = capillary rise), baseflow (kg m-2 per
    step), water-table depth (m) at the step's end).
    """
    zwt = water_table_depth_m(aquifer_kg_m2, theta, theta_fc, theta_sat)
    aq_room = -aquifer_kg_m2  # >= 0: what the aquifer can still take
    aq_water = aquifer_kg_m2 - AQUIFER_EMPTY_KG_M2  # > 0: what it can give
    # baseflow, store-limited by exact exponential depletion
    rate = baseflow_max * torch.exp(-C.BASEFLOW_DECAY_PER_M * zwt) * dt_s
    avail = aq_water.clamp_min(_TINY)
    baseflow = avail * (1.0 - torch.exp(-rate / avail))
    # Darcy flux between the bottom layer's node and the aquifer's water table
    th_b = theta[:, -1]
    liq_b = th_b if ice is None else th_b - ice[:, -1]
    s = (th_b / theta_sat[:, 0]).clamp(0.01, 1.0)  # saturation of the pores by water and ice: conductivity
    s_liq = s if ice is None else (liq_b / theta_sat[:, 0]).clamp(0.01, 1.0)  # by liquid water: suction
    suction = (psi_sat_m[:, 0].abs() * s_liq ** (-b[:, 0])).clamp_max(C.RECHARGE_SUCTION_CAP_M)
    ksat = ksat_m_s[:, 0] if ice is None else ksat_m_s[:, 0] * ice_impedance(ice[:, -1], theta_sat[:, 0])
    k_down = ksat * s ** (2.0 * b[:, 0] + 3.0)
    n = 2.0 + 3.0 / b[:, 0]
    x = (suction / psi_sat_m[:, 0].abs()).clamp_min(1.0 + 1e-6)
    k_up = ksat * (1.0 - x ** (1.0 - n)) / ((n - 1.0) * (x - 1.0))
    z_aq = SOIL_BOTTOM_M - aquifer_kg_m2 * (1.0 / KG_M2_PER_M)
    gradient = 1.0 - suction / (z_aq - BOTTOM_NODE_M)  # + down
    k = torch.where(gradient > 0, k_down, k_up)
    q = k * gradient * (C.RHO_WATER * dt_s)  # kg m-2 per step, + down
    w_b = th_b * dz_mm[-1]
    avail_b = ((liq_b - C.THETA_RES) * dz_mm[-1]).clamp_min(_TINY)
    q_down = q.clamp_min(0.0)
    down = torch.minimum(avail_b * (1.0 - torch.exp(-q_down / avail_b)), aq_room + baseflow)
    room_b = (theta_sat[:, 0] * dz_mm[-1] - w_b).clamp_min(0.0)
    up = torch.minimum(torch.minimum((-q).clamp_min(0.0), room_b), aq_water - baseflow)
    recharge = down - up
    aquifer_new = aquifer_kg_m2 + recharge - baseflow
    theta_b = (w_b - recharge) / dz_mm[-1]
    theta_new = torch.cat([theta[:, :-1], theta_b.unsqueeze(-1)], dim=-1)
    return theta_new, aquifer_new, recharge, baseflow, water_table_depth_m(aquifer_new, theta_new, theta_fc,
                                                                            theta_sat)
