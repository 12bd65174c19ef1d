"""Aerodynamic conductance from wind, heights and roughness, with a stability correction.

Roughness length and displacement height are fractions of canopy height;
the neutral bulk transfer coefficient follows from log profiles and the
stability factor from the bulk Richardson number (Louis 1979 type functions).
"""

from __future__ import annotations

import torch

from mdpl.ils import constants as C

def neutral_transfer(reference_height_m, canopy_height_m, z0_frac):
    """Return (ch_neutral, z - d in m) for heat/vapour transfer between surface and reference height."""
    z0m = (z0_frac * canopy_height_m).clamp_min(0.003)
    d = C.DISPLACEMENT_FRAC * canopy_height_m
    zd = torch.maximum(reference_height_m - d, 1.0 + 10.0 * z0m)
    ln_m = torch.log(zd / z0m)
    ch = C.VON_KARMAN**2 / (ln_m * (ln_m + C.KB_INV))
    return ch, zd

def stability_factor(rib: torch.Tensor) -> torch.Tensor:
    """Ratio of the actual to the neutral transfer coefficient (Louis 1979 type).

    sqrt(1 - 16 Rib) when unstable (Rib >= -0.5), 1 / (1 + 10 Rib (1 + 8 Rib)) when stable.
    """
    unstable = rib.clamp(-0.5, 0.0)
    stable = rib.clamp(0.0, 2.0)
    return torch.sqrt(1.0 - 16.0 * unstable) / (1.0 + 10.0 * stable * (1.0 + 8.0 * stable))


def richardson_coefficient(tair_k, wind):
    """1 / (Tair U^2), the state-independent part of the bulk Richardson number (s2 m-2 K-1)."""
    return 1.0 / (tair_k * wind * wind)


def aerodynamic_conductance(ch_neutral, g_zd, wind, tair_k, ts_k, rib_coef):
    """Conductance (m s-1) for heat and vapour at surface temperature ``ts_k``.

    Rib = g (z - d) (Tair - Ts) / (Tair U^2); ``g_zd`` = g (z - d), ``rib_coef`` = 1 / (Tair U^2).
    """
    rib = g_zd * (tair_k - ts_k) * rib_coef
    return ch_neutral * stability_factor(rib) * wind
