"""A differentiable daily bucket model with the land-model interface, for fast calibration tests.

Torch twin of :mod:`mdpl.ensemble.toy`: per day, vectorised over columns::

    Rn   = (1 - albedo) SWdown + LWdown - sigma Tair^4                  (W m-2)
    PET  = max(Rn, 0) Delta / (Delta + gamma)
    beta = clip(W / (stress_onset capacity_mm), 0, 1)
    Qle  = beta PET,  Qh = Rn - Qle                                      (W m-2)
    W   <- clip(W + P - Qle / lambda, 0, capacity_mm)                   (mm)
    NEE  = resp_base - 0.02 beta SWdown                                  (umol m-2 s-1)
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
import xarray as xr

from mdpl.data.features import site_features
from mdpl.ensemble.toy import toy_space

SIGMA, LAMBDA = 5.670374e-8, 2.45e6


#: 'PFT defaults' of the toy: albedo, capacity_mm, stress_onset, resp_base
TOY_DEFAULTS = {"GRA": (0.18, 120.0, 0.5, 2.5), "CRO": (0.18, 120.0, 0.5, 2.5)}


def toy_space_with_defaults():
    space = toy_space()
    space.defaults = lambda igbp: np.array(TOY_DEFAULTS.get(str(igbp).upper(), (0.18, 120.0, 0.5, 2.5)), dtype=float)
    return space


class TorchBucketModel:
    name = "torch-bucket"
    version = "1"

    def __init__(self):
        self.parameter_space = toy_space_with_defaults()
        self.dtype = torch.float64
        self.calls = 0
        self._cache = {}

    def _daily(self, ds):
        key = (str(ds.attrs.get("site")), str(ds["time"].values[0]), int(ds.sizes["time"]))
        if key not in self._cache:
            f = site_features(ds, min_measured_fraction=0.0)
            self._cache[key] = f
        return self._cache[key]

    def simulate(self, forcing, params, *, daily=True, spinup=True):
        self.calls += 1
        dss = [forcing] if isinstance(forcing, xr.Dataset) else list(forcing)
        p = torch.as_tensor(params, dtype=self.dtype) if not isinstance(params, torch.Tensor) else params.to(self.dtype)
        if p.dim() == 1:
            p = p[None, None, :].expand(len(dss), 1, -1)
        elif p.dim() == 2:
            p = p[None].expand(len(dss), -1, -1)
        self.parameter_space.validate(p)
        out = {k: [] for k in ("Qle", "Qh", "NEE")}
        time = None
        for i, ds in enumerate(dss):
            f = self._daily(ds)
            time = f.days if time is None else time
            alb, cap, onset, resp = (p[i, :, j : j + 1] for j in range(4))
            sw, lw, ta, pr = (torch.as_tensor(f.forcing_var(n), dtype=self.dtype)[None] for n in ("SWdown", "LWdown", "Tair", "Precip"))
            rn = (1 - alb) * sw + lw - SIGMA * ta**4
            tc = ta - 273.15
            delta = 4098.0 * 610.8 * torch.exp(17.27 * tc / (tc + 237.3)) / (tc + 237.3) ** 2
            pet = torch.clamp(rn, min=0.0) * delta / (delta + 66.0)
            w = 0.5 * cap[:, 0]
            qle = []
            for d in range(rn.shape[1]):
                beta = torch.clamp(w / (onset[:, 0] * cap[:, 0]), 0.0, 1.0)
                q = beta * pet[:, d]
                qle.append(q)
                w = torch.minimum(torch.clamp(w + pr[0, d] - q * 86400.0 / LAMBDA, min=0.0), cap[:, 0])
            qle = torch.stack(qle, 1)
            beta_all = torch.where(pet > 0, qle / torch.clamp(pet, min=1e-9), torch.zeros_like(pet))
            out["Qle"].append(qle)
            out["Qh"].append(rn - qle)
            out["NEE"].append(resp - 0.02 * beta_all * sw)
        fluxes = {k: torch.cat(v, 0) for k, v in out.items()}
        return SimpleNamespace(fluxes=fluxes, time=time, sites=[str(d.attrs.get("site")) for d in dss], n_sets=p.shape[1])


def observe(model, datasets, truth: np.ndarray, *, noise_w_m2: float = 5.0, seed: int = 0):
    """Put 'observations' (model with ``truth`` (n_sites, P) + Gaussian noise) into the datasets' flux fields.

    The toy model is daily, so each day's value is written to all its steps.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, ds in enumerate(datasets):
        res = model.simulate(ds, truth[i][None, :])
        f = model._daily(ds)
        day_of_step = np.asarray(ds["time"].values).astype("datetime64[D]")
        idx = np.searchsorted(np.asarray(f.days.values).astype("datetime64[D]"), day_of_step)
        idx = np.clip(idx, 0, f.n_days - 1)
        ds = ds.copy()
        for k in ("Qle", "Qh", "NEE"):
            daily = res.fluxes[k][0].detach().numpy()
            daily = daily + (noise_w_m2 if k != "NEE" else 0.3) * rng.standard_normal(daily.size)
            ds[k] = ("time", daily[idx])
            ds[f"{k}_measured"] = ("time", np.ones(ds.sizes["time"], bool))
        out.append(ds)
    return out
