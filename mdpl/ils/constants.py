"""Physical constants and the fixed soil/surface properties of the embedded model.

The soil is a loam with Clapp & Hornberger (1978) hydraulic properties; the
column has four layers (thicknesses :data:`SOIL_DZ_M`) shared by the water and
heat budgets.
"""

from __future__ import annotations

import math

GRAVITY = 9.81  # m s-2
VON_KARMAN = 0.4
STEFAN_BOLTZMANN = 5.670374e-8  # W m-2 K-4
CP_AIR = 1004.64  # J kg-1 K-1
R_DRY_AIR = 287.04  # J kg-1 K-1
R_GAS = 8.314  # J mol-1 K-1
LATENT_VAPORISATION = 2.501e6  # J kg-1
LATENT_FUSION = 3.337e5  # J kg-1
LATENT_SUBLIMATION = LATENT_VAPORISATION + LATENT_FUSION
T_FREEZE = 273.15  # K
RHO_WATER = 1000.0  # kg m-3

# surface
EMISSIVITY = 0.97
ALBEDO_SOIL = 0.17
ALBEDO_SNOW = 0.70
EXTINCTION = 0.5  # canopy light extinction coefficient (spherical leaves)
DISPLACEMENT_FRAC = 0.67  # zero-plane displacement / canopy height
KB_INV = 2.0  # ln(z0m / z0h)
MIN_WIND = 0.5  # m s-1
SNOW_COVER_MM = 10.0  # SWE at which half the ground is snow covered
SNOW_DENSITY = 250.0  # kg m-3
SNOW_CONDUCTIVITY = 0.3  # W m-1 K-1

# soil (loam, Clapp & Hornberger 1978)
SOIL_DZ_M = (0.1, 0.3, 0.8, 1.8)
THETA_SAT = 0.451
PSI_SAT_M = -0.478
CH_B = 5.39
KSAT_M_S = 6.95e-6
THETA_RES = 0.02
THETA_FC = THETA_SAT * (3.3 / abs(PSI_SAT_M)) ** (-1.0 / CH_B)  # at -33 kPa
THETA_WILT = THETA_SAT * (150.0 / abs(PSI_SAT_M)) ** (-1.0 / CH_B)  # at -1.5 MPa
SAT_RUNOFF_EXP = 6.0  # saturated-area fraction = (theta1/theta_sat)**SAT_RUNOFF_EXP
HEAT_CAP_SOLIDS = 1.926e6  # J m-3 K-1 (of the solid fraction)
HEAT_CAP_WATER = 4.18e6  # J m-3 K-1

# photosynthesis (Collatz et al. 1991; Sellers et al. 1996, C3)
O2_PA = 20900.0
QUANTUM_EFFICIENCY = 0.08  # mol CO2 per mol absorbed photons
PAR_UMOL_PER_J = 4.6 * 0.5  # half of shortwave is PAR, 4.6 umol J-1
LEAF_RESP_FRAC = 0.015  # dark respiration / Vcmax
T_HIGH_K = 313.15
T_LOW_K = 275.15

LOG10 = math.log(10.0)
