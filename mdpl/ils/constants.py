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
EXTINCTION = 0.5  # canopy light extinction coefficient (spherical leaves)
DISPLACEMENT_FRAC = 0.67  # zero-plane displacement / canopy height
KB_INV = 2.0  # ln(z0m / z0h)
MIN_WIND = 0.5  # m s-1
SNOW_COVER_MM = 10.0  # SWE at which half the ground is snow covered
SNOW_DENSITY = 250.0  # kg m-3
SNOW_CONDUCTIVITY = 0.3  # W m-1 K-1

# snow albedo ageing (MATSIRO: Takata et al. 2003, ILS model description sec. 8.7.1; snow age after
# Wiscombe & Warren 1980 and Yang et al. 1997, as in BATS, Dickinson et al. 1993). MATSIRO's band albedos
# of new / old snow are 0.9 / 0.65 (visible) and 0.7 / 0.2 (near infrared); this model has one shortwave
# band, half of it visible (as PAR_UMOL_PER_J below), so the broadband values are the band means.
SNOW_ALBEDO_NEW = 0.5 * (0.9 + 0.7)  # fresh snow, 1
SNOW_ALBEDO_OLD = 0.5 * (0.65 + 0.2)  # the limit of aged snow, 1
SNOW_AGE_TAU_S = 1.0e6  # tau_age: time scale of the non-dimensional snow age, s
SNOW_AGE_TEMP_K = 5000.0  # f_ageT: temperature sensitivity of grain growth, K
SNOW_AGE_DIRT = 0.3  # r_dirt: ageing by dirt and soot away from ice sheets, 1
SNOW_REFRESH_MM = 10.0  # snowfall (kg m-2) that restores fresh-snow albedo (BATS: 1 cm of water)

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

# frozen soil (ice is carried as the liquid-water volume it melts to, m3 m-3)
RHO_ICE = 917.0  # kg m-3
HEAT_CAP_ICE = 2.11727e6  # J K-1 per m3 of melt water: c_ice 2117.27 J kg-1 K-1 (CLM4.5, Oleson et al. 2013 Table 2.6)
COND_LIQUID = 0.57  # thermal conductivity of liquid water, W m-1 K-1 (CLM4.5 Table 2.6)
COND_ICE = 2.29  # thermal conductivity of ice, W m-1 K-1 (CLM4.5 Table 2.6)
ICE_IMPEDANCE = 6.0  # Omega: hydraulic conductivity x 10^(-Omega F_ice) (Swenson et al. 2012, JAMES 4:M08002; CLM4.5)

# photosynthesis (Collatz et al. 1991; Sellers et al. 1996, C3)
O2_PA = 20900.0
QUANTUM_EFFICIENCY = 0.08  # mol CO2 per mol absorbed photons
PAR_UMOL_PER_J = 4.6 * 0.5  # half of shortwave is PAR, 4.6 umol J-1
LEAF_RESP_FRAC = 0.015  # dark respiration / Vcmax
T_HIGH_K = 313.15
T_LOW_K = 275.15

LOG10 = math.log(10.0)

# groundwater: an unconfined aquifer below the soil column (Niu et al. 2007, J. Geophys. Res. 112:D07103,
# "SIMGM"; the drainage constants as in CLM4.0, Oleson et al. 2010, NCAR/TN-478+STR, sec. 7.6)
AQUIFER_SPECIFIC_YIELD = 0.2  # 1, drainable porosity of the aquifer (Niu et al. 2007)
AQUIFER_THICKNESS_M = 25.0  # m of aquifer below the soil column (Niu et al. 2007: 5000 mm of water when full)
BASEFLOW_MAX_KG_M2_S = 5.5e-3  # kg m-2 s-1, baseflow with the water table at the surface (CLM4.0 q_drai,max)
BASEFLOW_DECAY_PER_M = 2.5  # m-1, e-folding of baseflow with water-table depth (CLM4.0 f_drai, Niu et al. 2005)
#: the most the bottom layer's matric suction (m) counts in the recharge gradient (Noah-MP's -120 m floor)
RECHARGE_SUCTION_CAP_M = 120.0

# surface water: a pond (standing water) on the ground
DEPRESSION_STORAGE_KG_M2 = 2.0  # kg m-2 (= mm) held in surface depressions before runoff: order of the
#                                 depression storage of natural pervious surfaces (a few mm; Chow, Maidment &
#                                 Mays 1988, Applied Hydrology, sec. 5.7)
POND_FULL_COVER_KG_M2 = 10.0  # kg m-2: standing water at which the open water covers all of the bare ground
#                               (an assumption: cover rises linearly from 0 to 1 over the first 10 mm)
WETLAND_SPILL_KG_M2 = 100.0  # kg m-2: water a wetland holds above ground before it spills (hollows of
#                              hummock-hollow microtopography, ~0.1 m deep)
IMPEDED_BASEFLOW_MAX_KG_M2_S = 2.0 / 86400.0  # kg m-2 s-1: baseflow ceiling of a wetland or paddy, whose
#                              drainage is impeded (a peat or clay base, a paddy's plough pan): 2 mm per day, in
#                              the 1-5 mm d-1 seepage and percolation of puddled clay paddies (Bouman & Tuong
#                              2001, Agric. Water Manage. 49:11)
PADDY_TARGET_DEPTH_KG_M2 = 50.0  # kg m-2: standing water kept by irrigation in a paddy's flooded months
#                                  (5-10 cm under continuous flooding, Bouman & Tuong 2001)
PADDY_BUND_KG_M2 = 100.0  # kg m-2: water a paddy holds before it spills over its bunds
