"""A cheap daily bucket model with the land-model interface, for tests and quick demonstrations.

Not a land surface model: it exists so the ensemble store, the surrogates
and their training can be checked in seconds against a known function with
the same shape of problem (parameters that act instantly and through a
water store with memory). Per day, vectorised over parameter sets::

    Rn   = (1 - albedo) SWdown + LWdown - sigma Tair^4          (W m-2)
    PET  = max(Rn, 0) * Delta / (Delta + gamma)                  (Priestley-Taylor without alpha)
    beta = clip(W / (stress_onset * capacity_mm), 0, 1)
    Qle  = beta * PET                                            (W m-2)
    Qh   = Rn - Qle
    W   <- clip(W + P - Qle / lambda, 0, capacity_mm)            (mm)
    NEE  = resp_base - 0.02 * beta * SWdown                      (umol m-2 s-1)

Parameters (physical, its own :class:`~mdpl.ils.parameters.ParameterSpace`):
albedo, capacity_mm (log), stress_onset, resp_base.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mdpl.data.features import site_features

SIGMA = 5.670374e-8  # W m-2 K-4
LAMBDA = 2.45e6  # J kg-1
#: Tetens' saturation vapour pressure as in FAO-56 (Allen et al. 1998, eq. 11): e0 (Pa), a (1), b (degC); the
#: slope's numerator (degC, ~ a b, eq. 13); the psychrometric constant near sea level (Pa K-1)
TETENS_ES0_PA, TETENS_A, TETENS_B_C, FAO56_SLOPE_C = 610.8, 17.27, 237.3, 4098.0
PSYCHROMETRIC_PA_K = 66.0


def toy_space():
    """The toy model's parameter space (albedo, capacity_mm, stress_onset, resp_base)."""
    from mdpl.ils.parameters import ParameterSpace, ParameterSpec

    return ParameterSpace(
        (
            ParameterSpec("albedo", "1", 0.08, 0.3, False, "surface shortwave albedo"),
            ParameterSpec("capacity_mm", "kg m-2", 20.0, 400.0, True, "bucket capacity"),
            ParameterSpec("stress_onset", "1", 0.2, 1.0, False, "fraction of capacity below which ET is limited"),
            ParameterSpec("resp_base", "umol m-2 s-1", 0.5, 6.0, False, "ecosystem respiration"),
        )
    )


class ToyBucketModel:
    """``simulate(ds | [ds, ...], params, daily=True)`` -> ``.fluxes`` {Qle, Qh, NEE: (batch, days)}, ``.time``."""

    name = "toy-bucket"
    version = "1"

    def __init__(self):
        self.calls = 0

    def simulate(self, forcing, params, daily: bool = True):
        """One Dataset with params (n, 4), or a list of n_sites Datasets with (n_sites, n, 4); site-major batch."""
        if not daily:
            raise ValueError("the toy bucket model is daily only")
        self.calls += 1
        sites = forcing if isinstance(forcing, (list, tuple)) else [forcing]
        p = np.asarray(params, dtype=float)
        p = np.broadcast_to(p.reshape((1,) * (3 - p.ndim) + p.shape), (len(sites),) + p.shape[-2:])
        runs = [self._site(ds, p[i]) for i, ds in enumerate(sites)]
        n_days = min(r[1].shape[1] for r in runs)
        fluxes = {k: np.concatenate([r[0][k][:, :n_days] for r in runs]) for k in ("Qle", "Qh", "NEE")}
        return SimpleNamespace(fluxes=fluxes, time=runs[0][2][:n_days])

    def _site(self, ds, p):
        f = site_features(ds)
        alb, cap, onset, resp = (p[:, j : j + 1] for j in range(4))
        sw, lw, ta = f.forcing_var("SWdown"), f.forcing_var("LWdown"), f.forcing_var("Tair")
        precip = f.forcing_var("Precip")
        rn = (1.0 - alb) * sw + lw - SIGMA * ta**4  # (n, days)
        tc = ta - 273.15
        # slope of the saturation vapour pressure curve (Pa K-1), FAO-56 eq. 13 (Tetens)
        delta = FAO56_SLOPE_C * TETENS_ES0_PA * np.exp(TETENS_A * tc / (tc + TETENS_B_C)) / (tc + TETENS_B_C) ** 2
        pet = np.maximum(rn, 0.0) * delta / (delta + PSYCHROMETRIC_PA_K)
        n, t = rn.shape
        qle = np.empty((n, t))
        w = 0.5 * cap[:, 0]
        for d in range(t):
            beta = np.clip(w / (onset[:, 0] * cap[:, 0]), 0.0, 1.0)
            qle[:, d] = beta * pet[:, d]
            w = np.clip(w + precip[d] - qle[:, d] * 86400.0 / LAMBDA, 0.0, cap[:, 0])
        beta_all = np.where(pet > 0, qle / np.maximum(pet, 1e-9), 0.0)
        nee = resp - 0.02 * beta_all * sw
        return {"Qle": qle, "Qh": rn - qle, "NEE": nee}, qle, f.days
