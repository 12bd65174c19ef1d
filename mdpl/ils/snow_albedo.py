"""Snow albedo ageing: the snow albedo is a state that falls with snow age and is reset by snowfall.

MATSIRO's scheme (Takata et al. 2003; ILS model description, section 8.7.1),
broadband here (constants ``SNOW_*`` in :mod:`mdpl.ils.constants`). A
non-dimensional snow age A grows at

    dA/dt = (exp[f_T (1/T_melt - 1/T_snow)] + r_dirt) / tau_age

(grain growth, fastest at the melting point, after Wiscombe & Warren 1980 and
Yang et al. 1997, plus dirt and soot), and the albedo is

    alpha = alpha_new + A / (1 + A) (alpha_old - alpha_new),

so it decays from fresh-snow towards old-snow albedo: half way in about 9 days
at 0 degC and 4 weeks at -30 degC. A is recovered from the albedo each step (as
MATSIRO does, capped at 0.999 of the way to old snow); snowfall of P dt then
moves the albedo back towards fresh snow by min(P dt / dSn_c, 1), and snow that
falls on bare ground is fresh. The snow temperature is the skin temperature,
capped at the melting point (the model has no separate snow layer).
"""

from __future__ import annotations

import torch

from mdpl.ils import constants as C

_SPAN = C.SNOW_ALBEDO_OLD - C.SNOW_ALBEDO_NEW
_MAX_AGED = 0.999  # MATSIRO's cap on the aged fraction A / (1 + A)


def snow_age_rate(t_snow_k: torch.Tensor) -> torch.Tensor:
    """Growth rate (s-1) of the non-dimensional snow age at snow temperature ``t_snow_k`` (K)."""
    t = t_snow_k.clamp_max(C.T_FREEZE)
    grain = torch.exp(C.SNOW_AGE_TEMP_K * (1.0 / C.T_FREEZE - 1.0 / t))
    return (grain + C.SNOW_AGE_DIRT) * (1.0 / C.SNOW_AGE_TAU_S)


def refresh_snow_albedo(albedo: torch.Tensor, snowfall_mm: torch.Tensor, swe_before_mm: torch.Tensor) -> torch.Tensor:
    """Snow albedo (1) after this step's snowfall, (batch,): back towards fresh snow by
    min(snowfall / dSn_c, 1); fresh where no snow lay before (``swe_before_mm`` = 0, kg m-2)."""
    alb = albedo + (snowfall_mm * (1.0 / C.SNOW_REFRESH_MM)).clamp(0.0, 1.0) * (C.SNOW_ALBEDO_NEW - albedo)
    return torch.where(swe_before_mm > 0.0, alb, torch.full_like(alb, C.SNOW_ALBEDO_NEW))


def age_snow_albedo(albedo: torch.Tensor, t_snow_k: torch.Tensor, dt_s: float) -> torch.Tensor:
    """Snow albedo (1) after ``dt_s`` seconds of ageing at snow temperature ``t_snow_k`` (K), (batch,)."""
    aged = ((albedo - C.SNOW_ALBEDO_NEW) * (1.0 / _SPAN)).clamp(0.0, _MAX_AGED)
    age = aged / (1.0 - aged) + snow_age_rate(t_snow_k) * dt_s
    return C.SNOW_ALBEDO_NEW + (age / (1.0 + age)) * _SPAN
