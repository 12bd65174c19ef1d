"""Shortwave and longwave radiation of the single surface (canopy + soil + snow)."""

from __future__ import annotations

import torch

from mdpl.ils import constants as C


def vegetation_cover(lai: torch.Tensor) -> torch.Tensor:
    """Fraction of the ground shaded by the canopy, 1 - exp(-k LAI)."""
    return 1.0 - torch.exp(-C.EXTINCTION * lai)


def snow_free_albedo(fveg: torch.Tensor, albedo_canopy: torch.Tensor) -> torch.Tensor:
    """Cover-weighted albedo of canopy and bare soil."""
    return C.ALBEDO_SOIL + fveg * (albedo_canopy - C.ALBEDO_SOIL)


def snow_masking(fveg: torch.Tensor, canopy_height_m: torch.Tensor) -> torch.Tensor:
    """Fraction of the snow cover that stays visible: tall canopies hide snow, short ones do not."""
    return 1.0 - fveg * canopy_height_m / (canopy_height_m + 2.0)


def snow_cover(swe_mm: torch.Tensor) -> torch.Tensor:
    """Snow-covered fraction of the ground from SWE (kg m-2)."""
    s = swe_mm.clamp_min(0.0)
    return s / (s + C.SNOW_COVER_MM)


def surface_albedo(albedo_free: torch.Tensor, fsnow_visible: torch.Tensor, albedo_snow: torch.Tensor) -> torch.Tensor:
    """Albedo of the surface whose visible snow fraction has albedo ``albedo_snow`` (:mod:`mdpl.ils.snow_albedo`)."""
    return albedo_free + fsnow_visible * (albedo_snow - albedo_free)


def net_radiation(sw_down, lw_down, albedo, ts_k) -> torch.Tensor:
    """Rnet (W m-2) = (1 - albedo) SW + eps LW - eps sigma Ts^4."""
    return (1.0 - albedo) * sw_down + C.EMISSIVITY * (lw_down - C.STEFAN_BOLTZMANN * ts_k**4)
