"""Standing water on the ground (a pond): what it covers, how it evaporates, when it spills, paddy irrigation.

All amounts are kg m-2 (= mm) per step, (batch,) tensors.

- The pond receives what the soil cannot take (infiltration and saturation
  excess of throughfall, drip, melt, irrigation and the pond itself: the
  whole pond offers itself to the soil again every step, so it re-infiltrates
  as the soil drains).
- It keeps up to its spill depth (:mod:`mdpl.ils.site_water`); the rest runs off.
- Open water covers the bare ground in proportion to its depth, fully from
  :data:`~mdpl.ils.constants.POND_FULL_COVER_KG_M2` on; that cover evaporates
  at the potential rate (no surface resistance: rho ga (qsat(Ts) - qa)), and
  the soil evaporates only from the rest. The evaporation is store-limited
  by exact exponential depletion (as the wet canopy in
  :mod:`mdpl.ils.energy_balance`), so it never takes more than the pond holds;
  its latent heat is part of the surface energy balance.
- A paddy in its flooded months is irrigated up to its target depth.
"""

from __future__ import annotations

import torch

from mdpl.ils import constants as C


def open_water_cover(pond_kg_m2: torch.Tensor) -> torch.Tensor:
    """Fraction (0..1) of the bare ground under open water."""
    return (pond_kg_m2 * (1.0 / C.POND_FULL_COVER_KG_M2)).clamp(0.0, 1.0)


def evaporation_coefficients(pond_kg_m2: torch.Tensor, rho_g_open: torch.Tensor, dt_s: float):
    """Terms of the store-limited pond evaporation e = rate (1 - exp(-k dq)) (+ dew on the cover).

    ``rho_g_open``: air density x aerodynamic conductance of the bare, snow-free ground (kg m-2 s-1 per
    unit specific humidity): the potential rate over open water per unit humidity deficit dq.
    Returns (rate = pond / dt in kg m-2 s-1, k_dt = rho_g_open dt / max(pond, full cover) per unit dq,
    rho_g_cover = rho_g_open x cover for dew). For a pond deeper than one step's evaporation
    e -> rho_g_open dq x cover: the potential rate from the open-water fraction.
    """
    depth = torch.maximum(pond_kg_m2, torch.full_like(pond_kg_m2, C.POND_FULL_COVER_KG_M2))
    return pond_kg_m2 * (1.0 / dt_s), rho_g_open * dt_s / depth, rho_g_open * open_water_cover(pond_kg_m2)


def irrigation(pond_kg_m2: torch.Tensor, flooded: torch.Tensor) -> torch.Tensor:
    """Water (kg m-2 per step) that brings a flooded paddy's pond up to its target depth; ``flooded`` 0 or 1."""
    return flooded * (C.PADDY_TARGET_DEPTH_KG_M2 - pond_kg_m2).clamp_min(0.0)


def spill(excess_kg_m2: torch.Tensor, spill_kg_m2: torch.Tensor):
    """Split what the soil did not take into (pond kept, surface runoff) at the spill depth."""
    runoff = (excess_kg_m2 - spill_kg_m2).clamp_min(0.0)
    return excess_kg_m2 - runoff, runoff
