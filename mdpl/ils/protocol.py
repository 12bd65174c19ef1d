"""What every land model offers (:class:`LandModel`) and what a run returns (:class:`SimulationResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
import xarray as xr

from mdpl.ils.parameters import ParameterSpace

#: output name -> (units, long name); ALMA names where ALMA has one
OUTPUTS: dict[str, tuple[str, str]] = {
    "Qle": ("W m-2", "latent heat flux"),
    "Qh": ("W m-2", "sensible heat flux"),
    "Rnet": ("W m-2", "net radiation"),
    "Qg": ("W m-2", "ground heat flux: conduction from the surface to the first soil node (through any snow)"),
    "NEE": ("umol m-2 s-1", "net ecosystem exchange (positive = source)"),
    "GPP": ("umol m-2 s-1", "gross primary production"),
    "Reco": ("umol m-2 s-1", "ecosystem respiration"),
    "Evap": ("kg m-2 s-1", "total evapotranspiration (TVeg + ESoil + ECanop + SubSnow + EWater)"),
    "TVeg": ("kg m-2 s-1", "transpiration"),
    "ESoil": ("kg m-2 s-1", "bare soil evaporation"),
    "ECanop": ("kg m-2 s-1", "interception evaporation"),
    "SubSnow": ("kg m-2 s-1", "snow sublimation"),
    "Qs": ("kg m-2 s-1", "surface runoff"),
    "Qsb": ("kg m-2 s-1", "subsurface runoff: baseflow out of the aquifer below the soil column"),
    "Qsm": ("kg m-2 s-1", "snowmelt"),
    "Rainf": ("kg m-2 s-1", "rainfall (forcing, for water budgets)"),
    "Snowf": ("kg m-2 s-1", "snowfall (forcing, for water budgets)"),
    "Tsurf": ("K", "surface temperature: the skin (one_source), the radiative temperature of the emitted "
                   "longwave (two_source)"),
    "VegT": ("K", "canopy (leaf) temperature (one_source: the skin)"),
    "GroundT": ("K", "ground surface temperature under the canopy: soil, pond or snow (one_source: the skin)"),
    "SWE": ("kg m-2", "snow water equivalent, end of step"),
    "CanopInt": ("kg m-2", "canopy interception store, end of step"),
    "RootMoist": ("kg m-2", "soil water in the root zone, end of step"),
    "SoilWaterStress": ("1", "root-zone soil-water stress factor beta (1 = unstressed)"),
    "SAlbedo": ("1", "snow albedo (aged since the last snowfall) used in the step"),
    "energy_residual": ("W m-2", "surface imbalance Rnet - Qh - Qle - Qg left by the Newton iterations"),
    "energy_closure": ("W m-2", "Rnet - Qg - Qh - Qle (the surface stores no heat, so this is energy_residual)"),
    "EWater": ("kg m-2 s-1", "open-water evaporation from the pond (standing water)"),
    "Qirrig": ("kg m-2 s-1", "irrigation of a flooded paddy (a documented site option, not forcing)"),
    "Qrec": ("kg m-2 s-1", "recharge from the bottom soil layer to the aquifer (negative: capillary rise)"),
    "SurfStor": ("kg m-2", "standing water on the ground (pond), end of step"),
    "GWStor": ("kg m-2", "aquifer water counted from a full aquifer (<= 0), end of step"),
    "WaterTableD": ("m", "water-table depth below the surface, end of step"),
    "SoilMoist": ("kg m-2", "soil water per layer (liquid and ice), end of step"),
    "SoilTemp": ("K", "soil temperature per layer, end of step"),
    "SMFrozFrac": ("1", "frozen fraction of the soil water per layer (SoilMoist counts liquid and ice), end of step"),
}
LAYERED = ("SoilMoist", "SoilTemp", "SMFrozFrac")


@dataclass
class SimulationResult:
    """Fluxes and states of a batch of columns (batch = sites x parameter sets, site-major).

    ``fluxes[name]`` is ``(batch, time)`` or ``(batch, time, layer)`` for :data:`LAYERED`;
    ``time`` labels step starts (or days when ``is_daily``). ``initial_storage_mm`` is the
    column water (canopy + snow + soil + pond + aquifer counted from full, kg m-2) at the start of
    the run, for water budgets.
    """

    fluxes: dict[str, torch.Tensor]
    time: pd.DatetimeIndex
    sites: list[str]
    n_sets: int
    time_step_s: float
    is_daily: bool = False
    initial_storage_mm: torch.Tensor | None = None
    #: the same per store (``soil``, ``pond``, ``aquifer``, ``snow``, ``canopy``), (batch,) each
    initial_stores_mm: dict[str, torch.Tensor] = field(default_factory=dict)
    diagnostics: dict = field(default_factory=dict)
    layer_thickness_m: tuple[float, ...] = ()

    @property
    def batch(self) -> int:
        return len(self.sites) * self.n_sets

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.fluxes[name]

    def site_member(self, b: int) -> tuple[str, int]:
        """(site, member) of batch index ``b``."""
        return self.sites[b // self.n_sets], b % self.n_sets

    def daily(self) -> SimulationResult:
        """Daily means (calendar days of the step-start labels); states as daily means too."""
        if self.is_daily:
            return self
        days = self.time.normalize()
        uniq, inverse = np.unique(days.values, return_inverse=True)
        out = {}
        any_t = next(iter(self.fluxes.values()))
        idx = torch.as_tensor(inverse, device=any_t.device)
        counts = torch.bincount(idx, minlength=len(uniq)).to(any_t.dtype)
        for k, v in self.fluxes.items():
            shape = (v.shape[0], len(uniq)) + tuple(v.shape[2:])
            acc = torch.zeros(shape, dtype=v.dtype, device=v.device).index_add(1, idx, v)
            c = counts.view((1, -1) + (1,) * (v.dim() - 2))
            out[k] = acc / c
        return replace(self, fluxes=out, time=pd.DatetimeIndex(uniq), is_daily=True)

    def water_balance_mm(self) -> torch.Tensor:
        """Per column: precipitation + irrigation - evaporation - runoff - drainage - storage change (kg m-2).

        Storage: soil, snow, canopy, pond and aquifer. Needs a step-resolution result; accumulates in float64.
        """
        if self.is_daily:
            raise ValueError("water_balance_mm needs step-resolution output (daily=False)")
        f = {k: v.double() for k, v in self.fluxes.items()}
        dt = self.time_step_s
        inflow = (f["Rainf"] + f["Snowf"] + f.get("Qirrig", 0.0)).sum(1) * dt
        outflow = (f["Evap"] + f["Qs"] + f["Qsb"]).sum(1) * dt
        end = f["SWE"][:, -1] + f["CanopInt"][:, -1] + f["SoilMoist"][:, -1, :].sum(-1)
        for store in ("SurfStor", "GWStor"):  # absent from models without them (e.g. an external model)
            if store in f:
                end = end + f[store][:, -1]
        return inflow - outflow - (end - self.initial_storage_mm.double())

    def to_dataset(self) -> xr.Dataset:
        """Outputs as an ``xr.Dataset`` with dims (site, member, time[, soil_layer]) and units."""
        n_s, n_m = len(self.sites), self.n_sets
        data_vars = {}
        for k, v in self.fluxes.items():
            a = v.detach().cpu().numpy()
            a = a.reshape((n_s, n_m) + a.shape[1:])
            dims = ("site", "member", "time") + (("soil_layer",) if a.ndim == 4 else ())
            units, long = OUTPUTS.get(k, ("", k))
            data_vars[k] = xr.Variable(dims, a, {"units": units, "long_name": long})
        coords = {"site": list(self.sites), "member": np.arange(n_m), "time": self.time}
        if self.layer_thickness_m:
            coords["soil_layer"] = np.arange(len(self.layer_thickness_m))
            data_vars["layer_thickness"] = xr.Variable(("soil_layer",), np.array(self.layer_thickness_m),
                                                       {"units": "m"})
        attrs = {"time_step_s": 86400.0 if self.is_daily else float(self.time_step_s),
                 "aggregation": "daily mean" if self.is_daily else "step mean, time = step start"}
        attrs.update({k: int(v) if isinstance(v, bool) else v  # netCDF attributes have no boolean type
                      for k, v in self.diagnostics.items() if isinstance(v, (int, float, str))})
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)


@runtime_checkable
class LandModel(Protocol):
    """Any land model the rest of mdpl can drive: the embedded LSM or an external executable."""

    parameter_space: ParameterSpace

    def simulate(self, forcing, params, *, daily: bool = False, spinup: bool = True) -> SimulationResult:
        """Run ``params`` ((n,), (n_sets, n) or (n_sites, n_sets, n), physical units) on ``forcing``."""
        ...
