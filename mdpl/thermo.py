"""Saturation vapour pressure and humidity of moist air: one definition for the data features and the land model.

Bolton (1980, Mon. Wea. Rev. 108:1046, eq. 10) over liquid water,
e_s(T) = 611.2 Pa exp(17.67 (T - 273.15 K) / (T - 273.15 K + 243.5 K)),
and the specific humidity approximation q = epsilon e / P of the embedded land
model. A leaf module (numpy and torch alike) so ``mdpl.data`` may import it.
"""

from __future__ import annotations

import numpy as np

#: saturation vapour pressure at 0 degC (Pa), Bolton (1980)
ES0_PA = 611.2
#: Bolton's (1980) dimensionless coefficient
BOLTON_A = 17.67
#: Bolton's (1980) temperature offset (K): e_s has T_c / (T_c + 243.5 K)
BOLTON_B_K = 243.5
#: melting point of ice (K)
T_FREEZE_K = 273.15
#: ratio of the molar masses of water vapour and dry air (1)
EPSILON = 0.622
#: temperature (K) at which Bolton's denominator vanishes: T - T_POLE_K = T_c + 243.5 K
T_POLE_K = T_FREEZE_K - BOLTON_B_K


def _exp(x):
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.exp(x)
    return x.exp()


def saturation_vapour_pressure_pa(t_k):
    """Saturation vapour pressure over water (Pa) at temperature ``t_k`` (K); numpy or torch."""
    return ES0_PA * _exp(BOLTON_A * (t_k - T_FREEZE_K) / (t_k - T_POLE_K))


def saturation_specific_humidity(t_k, psurf_pa):
    """Saturation specific humidity (kg kg-1) as epsilon e_s / P; numpy or torch."""
    return (EPSILON / psurf_pa) * saturation_vapour_pressure_pa(t_k)


def vapour_pressure_pa(qair, psurf_pa):
    """Vapour pressure (Pa) of air with specific humidity ``qair`` (kg kg-1) at pressure ``psurf_pa``."""
    return qair * psurf_pa / (EPSILON + (1.0 - EPSILON) * qair)
