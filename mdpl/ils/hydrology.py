"""Water stores of a column: canopy interception, snow, and four soil layers.

All amounts are kg m-2 (= mm) per step. Every outflow is bounded by the store
it leaves, so stores never go negative and the bookkeeping closes exactly:
precipitation = evaporation + surface runoff + drainage + storage change.

- interception: rain falls on the canopy in proportion to its cover; the
  store above capacity (``interception_mm`` x LAI) drips off;
- soil: transpiration is drawn from the layers by root fraction x stress,
  soil evaporation from the top layer; gravity drainage K(theta) =
  Ksat (theta/theta_sat)^(2b+3) (each column's own texture,
  :mod:`mdpl.ils.soil_texture`) leaves each layer with exact exponential
  depletion of its water above residual and is capped by the room in the
  layer below; the bottom layer drains freely, or (``free_drainage=False``,
  as the model runs) exchanges with the aquifer of :mod:`mdpl.ils.groundwater`;
- ice in a layer (:mod:`mdpl.ils.freezing`) stays put and cuts the
  conductivity by 10^(-6 F_ice) (CLM4.5);
- infiltration excess: the saturated-area fraction of throughfall + melt,
  plus what exceeds the room in the top layer or the infiltration capacity
  Ksat dt (the model ponds it, :mod:`mdpl.ils.ponding`, and what spills over
  is surface runoff ``Qs``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdpl.ils import constants as C
from mdpl.ils.freezing import ice_impedance

_DZ = torch.tensor(C.SOIL_DZ_M, dtype=torch.float64)
_TOP = torch.cumsum(_DZ, 0) - _DZ


def root_fractions(root_depth_m: torch.Tensor) -> torch.Tensor:
    """Root fraction per layer (batch, layer) of an exponential profile with 95 % above ``root_depth_m``.

    Cumulative fraction Y(z) = 1 - exp(-3 z / D); normalised over the column.
    """
    dz = _DZ.to(root_depth_m)
    bottom = torch.cumsum(dz, 0)
    top = bottom - dz
    a = 3.0 / root_depth_m.unsqueeze(-1)
    frac = torch.exp(-a * top) - torch.exp(-a * bottom)
    return frac / frac.sum(-1, keepdim=True)


def root_zone_weights(root_depth_m: torch.Tensor) -> torch.Tensor:
    """Fraction of each layer that lies above ``root_depth_m`` (for RootMoist)."""
    dz = _DZ.to(root_depth_m)
    top = _TOP.to(root_depth_m)
    return ((root_depth_m.unsqueeze(-1) - top) / dz).clamp(0.0, 1.0)


def layer_water_mm(theta: torch.Tensor) -> torch.Tensor:
    return theta * (_DZ.to(theta) * C.RHO_WATER)


def canopy_drip(store_mm, capacity_mm):
    """Split a canopy store into (kept, drip) at capacity."""
    drip = (store_mm - capacity_mm).clamp_min(0.0)
    return store_mm - drip, drip


def soil_step(theta, extraction_mm, water_in_mm, grid, dt_s, ksat_m_s, free_drainage: bool = True, ice=None):
    """One soil-water step. Returns (theta, surface_runoff_mm, drainage_mm).

    ``free_drainage=False``: the bottom layer keeps its gravity drainage (drainage_mm is zero): the
    exchange with an aquifer below (:mod:`mdpl.ils.groundwater`) takes its place.

    ``extraction_mm`` (batch, layer): transpiration + soil evaporation taken from each layer;
    ``water_in_mm``: throughfall + drip + melt arriving at the surface; ``grid``: a :class:`SoilGrid`;
    ``ksat_m_s``: saturated hydraulic conductivity (batch, 1), m s-1 (a calibrated quantity, so not in the grid).
    ``ice`` (batch, layer), m3 m-3 of ``theta``: frozen water, which stays put and impedes the flow
    (:func:`mdpl.ils.freezing.ice_impedance`): only liquid water above residual drains, and the
    infiltration capacity is the top layer's impeded conductivity.
    """
    w = theta * grid.dz_mm - extraction_mm
    ice_mm, impedance = (0.0, 1.0) if ice is None else (ice * grid.dz_mm, ice_impedance(ice, grid.theta_sat))
    # gravity drainage with exact exponential depletion of the liquid water above residual
    avail = (w - ice_mm - grid.res_mm).clamp_min(1e-9)
    ksat_mm = ksat_m_s * (C.RHO_WATER * dt_s)  # (batch, 1), kg m-2 per step
    k_mm = impedance * ksat_mm * (w * grid.inv_sat_mm).clamp(0.0, 1.0) ** grid.drain_exponent
    drain = avail * (1.0 - torch.exp(-k_mm / avail))
    inner = torch.minimum(drain[:, :-1], (grid.sat_mm[:, 1:] - w[:, 1:]).clamp_min(0.0))
    bottom = drain[:, -1:] if free_drainage else torch.zeros_like(drain[:, -1:])
    w = w - torch.cat([inner, bottom], dim=-1) + F.pad(inner, (1, 0))
    # infiltration and surface runoff
    w_top = w[:, 0]
    sat_frac = (w_top * grid.inv_sat_mm[:, 0]).clamp(0.0, 1.0) ** C.SAT_RUNOFF_EXP
    top_ksat_mm = ksat_mm[:, 0] if ice is None else ksat_mm[:, 0] * impedance[:, 0]
    capacity = torch.minimum((grid.sat_mm[:, 0] - w_top).clamp_min(0.0), top_ksat_mm)
    infil = torch.minimum(water_in_mm * (1.0 - sat_frac), capacity)
    w = w + infil.unsqueeze(-1) * grid.top
    return w * grid.inv_dz_mm, water_in_mm - infil, bottom[:, 0]


class SoilGrid:
    """Layer geometry and each column's soil capacities as tensors on one device/dtype.

    ``hydraulics``: a :class:`mdpl.ils.soil_texture.SoilHydraulics` of (batch, 1) tensors (texture only:
    nothing here may depend on calibrated parameters); without it every column is the loam of
    :mod:`mdpl.ils.constants` (shapes (1, layer)).
    """

    def __init__(self, device=None, dtype=torch.float32, hydraulics=None):
        kw = dict(device=device, dtype=dtype)
        self.dz_m = torch.as_tensor(C.SOIL_DZ_M, **kw)
        self.dz_mm = self.dz_m * C.RHO_WATER
        self.inv_dz_mm = 1.0 / self.dz_mm
        if hydraulics is None:
            theta_sat = torch.full((1, 1), C.THETA_SAT, **kw)
            b = torch.full((1, 1), C.CH_B, **kw)
        else:
            theta_sat, b = hydraulics.theta_sat, hydraulics.b
        self.theta_sat = theta_sat  # (batch, 1), m3 m-3
        self.drain_exponent = 2.0 * b + 3.0  # Clapp-Hornberger K(theta) exponent, (batch, 1)
        self.sat_mm = theta_sat * self.dz_mm  # (batch, layer)
        self.inv_sat_mm = 1.0 / self.sat_mm
        self.res_mm = C.THETA_RES * self.dz_mm
        self.inv_node_dist = 2.0 / (self.dz_m[:-1] + self.dz_m[1:])
        self.top = torch.zeros(len(C.SOIL_DZ_M), **kw)
        self.top[0] = 1.0
