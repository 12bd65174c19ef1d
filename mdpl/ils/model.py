"""The embedded land model: a big-leaf, single-column LSM in the spirit of MATSIRO / SiB2.

One column per (site, parameter set), vectorised over the batch, at the
forcing's own time step. Each step: interception, snow (with an ageing snow
albedo), soil-water stress,
canopy conductance (Collatz/Ball-Berry), aerodynamic conductance, the surface
energy balance (``lsm.energy_balance``: one skin temperature Ts,
:mod:`mdpl.ils.energy_balance`, or a canopy at Tv over the ground at Tg,
:mod:`mdpl.ils.two_source`), soil heat conduction with snowmelt, soil
water (transpiration by root fraction, soil evaporation, drainage, runoff),
freezing and thawing of the soil water,
a pond of standing water (:mod:`mdpl.ils.ponding`), an unconfined aquifer
with a water table (:mod:`mdpl.ils.groundwater`) and ecosystem respiration. Everything is torch, so gradients of any output
with respect to the parameters flow through the whole run.

The run is split into calendar-day chunks: state-independent terms
(photosynthetic capacity, air density, albedo, ...) are computed for a whole
day at once, the state loop runs step by step, and when gradients are needed
each day is a (reentrant) ``torch.utils.checkpoint`` segment so backprop
through a year keeps only the day boundaries in memory (about 100 MiB for a
single column, whatever the length); such runs need ``loss.backward()``:
``torch.autograd.grad`` requires ``LsmConfig(checkpoint_days=False)``, whose
graph grows by about 19 MiB per simulated day for one column. Spin-up runs
without gradients; gradients do **not** flow through the spun-up initial state.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from mdpl.config import LsmConfig
from mdpl.device import resolve_device
from mdpl.errors import ConfigError, ModelError
from mdpl.ils import constants as C
from mdpl.ils.c4 import c4_fraction
from mdpl.ils.carbon import ecosystem_respiration
from mdpl import thermo
from mdpl.ils.energy_balance import SurfaceTerms, qsat, solve_surface
from mdpl.ils.forcing import ForcingTensors, as_forcing
from mdpl.ils.groundwater import aquifer_for_water_table, equilibrium_water_table_m, groundwater_step, layer_tops_m
from mdpl.ils.freezing import phase_change
from mdpl.ils.hydrology import SoilGrid, canopy_drip, layer_water_mm, root_fractions, root_zone_weights, soil_step
from mdpl.ils.parameters import PARAMETER_SPACE, ParameterSpace
from mdpl.ils.photosynthesis import canopy_photosynthesis, conductance_coefficients, soil_water_stress
from mdpl.ils.ponding import evaporation_coefficients, irrigation, open_water_cover, spill
from mdpl.ils.protocol import SimulationResult
from mdpl.ils.radiation import snow_cover, snow_free_albedo, snow_masking, vegetation_cover
from mdpl.ils.site_water import site_water
from mdpl.ils.snow_albedo import age_snow_albedo, refresh_snow_albedo
from mdpl.ils.soil_texture import cosby_hydraulics, site_texture
from mdpl.ils.soil_thermal import ground_conductance, layer_properties, snowmelt, step_temperature
from mdpl.ils.turbulence import aerodynamic_conductance, neutral_transfer, richardson_coefficient
from mdpl.ils.two_source import (TwoSourceTerms, canopy_emissivity, friction_velocity_ratio,
                                 leaf_boundary_conductance, solve_two_source, under_canopy_conductance)

class ColumnState(NamedTuple):
    """The state a step carries to the next, per column: (batch,) or (batch, layer) tensors."""

    ts: torch.Tensor  # surface (skin) temperature, K; two_source: the radiative temperature (for stability)
    wc: torch.Tensor  # canopy interception store, kg m-2
    swe: torch.Tensor  # snow water equivalent, kg m-2
    theta: torch.Tensor  # volumetric soil water per layer (liquid + ice), m3 m-3
    tsoil: torch.Tensor  # soil temperature per layer, K
    pond: torch.Tensor  # standing water on the ground, kg m-2
    aquifer: torch.Tensor  # aquifer water counted from a full aquifer (<= 0), kg m-2
    tv: torch.Tensor  # canopy (leaf) temperature, K (one_source: = ts)
    tg: torch.Tensor  # ground surface temperature (soil, pond, snow), K (one_source: = ts)
    alb_snow: torch.Tensor  # snow albedo (:mod:`mdpl.ils.snow_albedo`), 1
    ice: torch.Tensor  # frozen part of theta per layer, as melt water, m3 m-3 (:mod:`mdpl.ils.freezing`)


class StepTerms(NamedTuple):
    """State-independent per-step terms, (batch,) each; ``_chunk_inputs`` stacks them in this order."""

    ta: torch.Tensor  # air temperature, K
    qa: torch.Tensor  # specific humidity, kg kg-1
    cq: torch.Tensor  # epsilon e_s0 / P, kg kg-1
    rho_cp: torch.Tensor  # air density x heat capacity, J m-3 K-1
    rho_veg: torch.Tensor  # air density x vegetation cover, kg m-3
    rho_bare: torch.Tensor  # air density x bare fraction, kg m-3
    u: torch.Tensor  # wind speed (floored), m s-1
    rad_free: torch.Tensor  # absorbed SW of the snow-free surface + eps LW, W m-2
    vis_sw: torch.Tensor  # SW onto the visible (not canopy-hidden) snow of a full snow cover, W m-2
    vis_alb_sw: torch.Tensor  # vis_sw x the snow-free albedo, W m-2 (so snow absorbs alb_snow vis_sw - this less)
    rain_int: torch.Tensor  # rain onto the canopy, kg m-2 per step
    rain_thr: torch.Tensor  # rain through the canopy gaps, kg m-2 per step
    snow_in: torch.Tensor  # snowfall, kg m-2 per step
    wmax: torch.Tensor  # interception capacity, kg m-2
    inv_wmax: torch.Tensor  # 1 / wmax
    gross: torch.Tensor  # unstressed gross canopy photosynthesis (C3 + C4), umol m-2 s-1
    rd: torch.Tensor  # canopy dark respiration, umol m-2 s-1
    gross_g: torch.Tensor  # gross, each pathway weighted by its Ball-Berry slope / the C3 slope (for conductance)
    rd_g: torch.Tensor  # rd weighted likewise
    k1: torch.Tensor  # Ball-Berry conductance per unit net assimilation, m s-1 per umol m-2 s-1
    k0: torch.Tensor  # minimum canopy conductance, m s-1
    rib_coef: torch.Tensor  # 1 / (Tair U^2), s2 m-2 K-1
    flooded: torch.Tensor  # 1 in a paddy's flooded months (irrigated), else 0
    lw_down: torch.Tensor  # downward longwave, W m-2
    sw_veg: torch.Tensor  # SW absorbed by the canopy of a snow-free scene, fveg (1 - albedo_canopy) SW, W m-2
    sw_veg_hidden: torch.Tensor  # the part of sw_veg that a full visible snow cover hides, W m-2
    sw: torch.Tensor  # downward shortwave (>= 0), W m-2
    co2: torch.Tensor  # CO2, ppm
    rh: torch.Tensor  # relative humidity of the air, 1
    lai: torch.Tensor  # leaf area index (>= 0.01), m2 m-2
    ps: torch.Tensor  # surface pressure, Pa


class RawOutputs(NamedTuple):
    """What one step reports, (batch,) each (water amounts in kg m-2 per step); stacked in this order."""

    Qle: torch.Tensor
    Qh: torch.Tensor
    Rnet: torch.Tensor
    Qg: torch.Tensor
    GPP: torch.Tensor
    Reco: torch.Tensor
    TVeg: torch.Tensor
    ESoil: torch.Tensor
    ECanop: torch.Tensor
    SubSnow: torch.Tensor
    runoff_mm: torch.Tensor
    drain_mm: torch.Tensor
    melt_mm: torch.Tensor
    Tsurf: torch.Tensor
    SWE: torch.Tensor
    CanopInt: torch.Tensor
    SoilWaterStress: torch.Tensor
    SAlbedo: torch.Tensor
    energy_residual: torch.Tensor
    EWater: torch.Tensor
    irrig_mm: torch.Tensor
    recharge_mm: torch.Tensor
    SurfStor: torch.Tensor
    GWStor: torch.Tensor
    WaterTableD: torch.Tensor
    VegT: torch.Tensor
    GroundT: torch.Tensor


#: every scalar output of a run, in order
STEP_OUTPUTS = ("Qle", "Qh", "Rnet", "Qg", "NEE", "GPP", "Reco", "Evap", "TVeg", "ESoil", "ECanop", "SubSnow",
                "Qs", "Qsb", "Qsm", "Rainf", "Snowf", "Tsurf", "SWE", "CanopInt", "RootMoist", "SoilWaterStress",
                "energy_residual", "energy_closure", "EWater", "Qirrig", "Qrec", "SurfStor", "GWStor",
                "WaterTableD", "VegT", "GroundT", "SAlbedo")
#: surface energy balances (``lsm.energy_balance``)
ENERGY_BALANCES = ("one_source", "two_source")
N_LAYERS = len(C.SOIL_DZ_M)
_RSOIL_SLOPE = 4.255  # SiB2: r_soil = exp(8.206 - 4.255 W)
#: ``lsm.compile: auto`` compiles the step for runs of at least this many time steps (spin-up included):
#: compiling takes ~20-30 s on a CPU and saves ~2 ms a step there
COMPILE_MIN_STEPS = 20_000


def _tqdm_disabled() -> bool:
    return os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def _flatten_static(static: dict):
    """Tensors of the ``static`` dict (one level of nesting) and a function that rebuilds it from them."""
    keys = []
    flat = []
    for k, v in static.items():
        if isinstance(v, torch.Tensor):
            keys.append((k, None))
            flat.append(v)
        elif isinstance(v, dict):
            for k2, v2 in v.items():
                keys.append((k, k2))
                flat.append(v2)

    def rebuild(tensors):
        out = {k: v for k, v in static.items() if not isinstance(v, (torch.Tensor, dict))}
        for (k, k2), t in zip(keys, tensors):
            if k2 is None:
                out[k] = t
            else:
                out.setdefault(k, {})[k2] = t
        return out

    return flat, rebuild


def first_year_steps(f: ForcingTensors) -> int:
    """Steps in the record's first 365 days (the whole record if shorter): one spin-up cycle."""
    return min(f.n_steps, int(round(365 * 86400 / f.time_step_s)))


def day_chunks(time: pd.DatetimeIndex) -> list[tuple[int, int]]:
    """(start, stop) step ranges of the calendar days of ``time`` (step-start labels)."""
    days = time.normalize().values
    cut = np.flatnonzero(days[1:] != days[:-1]) + 1
    edges = np.concatenate([[0], cut, [len(time)]])
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


class EmbeddedLSM:
    """The default land model behind :class:`mdpl.ils.LandModel`.

    ``device``: ``auto`` picks CUDA when present; ``dtype`` defaults to ``config.dtype``.
    """

    name = "embedded"

    def __init__(self, config: LsmConfig | None = None, device: str | torch.device = "auto",
                 dtype: torch.dtype | None = None):
        self.config = config or LsmConfig()
        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        if dtype is None:
            dtype = getattr(torch, str(self.config.dtype), None)
            if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
                raise ConfigError(f"lsm.dtype: expected float32 or float64, got {self.config.dtype!r}")
        self.dtype = dtype
        if self.config.newton_iterations < 1:
            raise ConfigError(f"lsm.newton_iterations must be >= 1, got {self.config.newton_iterations}")
        if self.config.compile not in ("auto", "on", "off"):
            raise ConfigError(f"lsm.compile: expected 'auto', 'on' or 'off', got {self.config.compile!r}")
        if self.config.energy_balance not in ENERGY_BALANCES:
            raise ConfigError(f"lsm.energy_balance: expected 'one_source' or 'two_source', "
                              f"got {self.config.energy_balance!r}")
        self._two_source = self.config.energy_balance == "two_source"
        self.parameter_space: ParameterSpace = PARAMETER_SPACE
        self._compiled_step = None  # torch.compile(self._step), made on first use
        self._use_compiled = False  # decided per run by simulate()
        #: why compilation was given up in this process (None: it was not)
        self.compile_error: str | None = None

    def __repr__(self) -> str:
        return f"EmbeddedLSM(device={self.device}, dtype={self.dtype})"

    # -- inputs -------------------------------------------------------------------
    def forcing(self, forcing) -> ForcingTensors:
        """Convert any accepted forcing to tensors on this model's device and dtype."""
        return as_forcing(forcing, device=self.device, dtype=self.dtype)

    def default_params(self, forcing: ForcingTensors) -> torch.Tensor:
        """Per-site defaults from each site's IGBP class, shape (n_sites, 1, n_params)."""
        rows = []
        for site, igbp in zip(forcing.sites, forcing.igbp):
            try:
                rows.append(self.parameter_space.defaults(igbp))
            except ModelError as e:
                raise ModelError(f"site {site}: {e}") from None
        return torch.as_tensor(np.stack(rows)[:, None, :], device=self.device, dtype=self.dtype)

    def _batch_params(self, params, forcing: ForcingTensors) -> tuple[torch.Tensor, int]:
        s, n = forcing.n_sites, self.parameter_space.n
        if params is None:
            p = self.default_params(forcing)
        else:
            p = params.to(device=self.device, dtype=self.dtype) if isinstance(params, torch.Tensor) \
                else torch.as_tensor(np.asarray(params, dtype=float), device=self.device, dtype=self.dtype)
        if p.shape[-1:] != (n,):
            raise ModelError(f"params have last dimension {tuple(p.shape)[-1:]}; expected {n} "
                             f"({', '.join(self.parameter_space.names)})")
        if p.dim() == 1:
            p = p.view(1, 1, n).expand(s, 1, n)
        elif p.dim() == 2:
            p = p.unsqueeze(0).expand(s, p.shape[0], n)
        elif p.dim() == 3:
            if p.shape[0] != s:
                raise ModelError(f"params shaped (n_sites, n_sets, n) have {p.shape[0]} sites but the forcing "
                                 f"has {s} ({', '.join(forcing.sites)})")
        else:
            raise ModelError(f"params must have 1, 2 or 3 dimensions, got shape {tuple(p.shape)}")
        self.parameter_space.validate(p)
        return p.reshape(s * p.shape[1], n), int(p.shape[1])

    # -- the run ----------------------------------------------------------------------
    def simulate(self, forcing, params=None, *, daily: bool = False, spinup: bool = True,
                 initial_theta=None) -> SimulationResult:
        """Run every parameter set on every site.

        ``params``: physical units, shape (n,), (n_sets, n) or (n_sites, n_sets, n); None uses
        each site's IGBP defaults. Batch index = site * n_sets + set. ``initial_theta``:
        volumetric soil water (m3 m-3) to start from instead of field capacity: a number,
        (layer,) or (batch, layer); spin-up, when on, starts from it too, and the water table starts in
        equilibrium with its bottom layer unless the site rule gives the water table's depth.
        """
        f = self.forcing(forcing)
        p, n_sets = self._batch_params(params, f)
        static = self._static(f, p, n_sets)
        state = self._initial_state(f, n_sets, static)
        if initial_theta is not None:
            th = torch.as_tensor(initial_theta, device=self.device, dtype=self.dtype)
            sat = float(static["theta_sat"].min())
            if th.min() < C.THETA_RES or th.max() > sat:
                raise ModelError(f"initial_theta must lie in [{C.THETA_RES}, {sat:.3f}] m3 m-3 (the porosity "
                                 "of the most porous soil in the run is the upper bound)")
            theta0 = torch.broadcast_to(th, state.theta.shape).clone()
            state = state._replace(theta=theta0, aquifer=self._initial_aquifer(static, theta0))
        info: dict = {"spinup_cycles": 0,
                      "soil_theta_sat": [float(v) for v in static["theta_sat"][:, 0]],
                      "soil_theta_fc": [float(v) for v in static["theta_fc"][:, 0]]}
        total_steps = f.n_steps + (self.config.spinup_max_years * first_year_steps(f) if spinup else 0)
        self._use_compiled = self._compile_pays(total_steps)
        info["compiled_step"] = self._use_compiled
        if spinup:
            state, info = self._spin_up(f, static, n_sets, state)
        state = ColumnState(*(s.detach() for s in state))
        storage0 = self._storage_mm(state)
        stores0 = {"soil": layer_water_mm(state.theta).sum(-1), "pond": state.pond, "aquifer": state.aquifer,
                   "snow": state.swe, "canopy": state.wc}
        chunks = day_chunks(f.time)
        use_ckpt = self.config.checkpoint_days and torch.is_grad_enabled() and p.requires_grad
        scalars, layered = [], []
        bar = tqdm(chunks, desc="land model", unit="day", leave=False,
                   disable=_tqdm_disabled() or len(chunks) < 60)
        for a, b in bar:
            x = self._chunk_inputs(f, static, n_sets, a, b)
            if use_ckpt:
                state, out_s, out_l = self._checkpointed(x, state, static)
            else:
                state, out_s, out_l = self._run_steps(x, state, static, True)
            out_s = self._derived(x, out_s, out_l, static)
            if daily:
                out_s, out_l = out_s.mean(0, keepdim=True), out_l.mean(0, keepdim=True)
            scalars.append(out_s)
            layered.append(out_l)
        out_s = torch.cat(scalars, 0)  # (time, n_out, batch)
        out_l = torch.cat(layered, 0)  # (time, 3, batch, layer): theta, tsoil, ice
        fluxes = {k: out_s[:, i, :].transpose(0, 1) for i, k in enumerate(STEP_OUTPUTS)}
        fluxes["SoilMoist"] = (out_l[:, 0] * static["grid"].dz_mm).transpose(0, 1)
        fluxes["SoilTemp"] = out_l[:, 1].transpose(0, 1)
        fluxes["SMFrozFrac"] = (out_l[:, 2] / out_l[:, 0]).transpose(0, 1)
        time = pd.DatetimeIndex([f.time[a] for a, _ in chunks]).normalize() if daily else f.time
        info["max_abs_energy_residual_w_m2"] = float(fluxes["energy_residual"].detach().abs().max())
        return SimulationResult(fluxes=fluxes, time=time, sites=list(f.sites), n_sets=n_sets,
                                time_step_s=f.time_step_s, is_daily=daily, initial_storage_mm=storage0,
                                initial_stores_mm=stores0,
                                diagnostics=info, layer_thickness_m=C.SOIL_DZ_M)

    def _spin_up(self, f: ForcingTensors, static: dict, n_sets: int, state):
        """Repeat the first year until column soil water changes by less than the tolerance.

        Each column stops on its own convergence (later cycles leave it as it was), so a column's
        spun-up state does not depend on the other sites and sets it shares the batch with.
        """
        chunks = day_chunks(f.time[: first_year_steps(f)])
        cfg = self.config
        cycles = 0
        with torch.no_grad():
            state = ColumnState(*(s.detach() for s in state))
            done = torch.zeros_like(state[0], dtype=torch.bool)
            drift = torch.full_like(state[0], math.inf)
            for cycles in range(1, cfg.spinup_max_years + 1):
                before = state
                w0 = layer_water_mm(state.theta).sum(-1)
                for a, b in chunks:
                    state, _, _ = self._run_steps(self._chunk_inputs(f, static, n_sets, a, b), state, static, False)
                w1 = layer_water_mm(state.theta).sum(-1)
                state = ColumnState(*(torch.where(done.view(-1, *([1] * (s.dim() - 1))), s0, s)
                                      for s0, s in zip(before, state)))
                drift = torch.where(done, drift, (w1 - w0).abs() / w0)
                done = done | (drift < cfg.spinup_tolerance)
                if bool(done.all()):
                    break
        return state, {"spinup_cycles": cycles, "spinup_final_drift": float(drift.max())}

    # -- pieces ------------------------------------------------------------------------
    @staticmethod
    def _expand(t: torch.Tensor, n_sets: int) -> torch.Tensor:
        return t if n_sets == 1 else t.repeat_interleave(n_sets, dim=0)

    def _static(self, f: ForcingTensors, p: torch.Tensor, n_sets: int) -> dict:
        """Per-column constants (batch,) or (batch, layer) from parameters and site heights."""
        names = self.parameter_space.names
        col = dict(zip(names, p.unbind(-1)))
        zref = self._expand(f.reference_height_m, n_sets)
        hc = self._expand(f.canopy_height_m, n_sets)
        ch_n, zd = neutral_transfer(zref, hc, col["z0_frac"])
        soil = cosby_hydraulics(*self._textures(f, n_sets), col["ksat_factor"])
        grid = SoilGrid(device=p.device, dtype=p.dtype, hydraulics=soil)
        ramp = col["stress_onset"] * (soil.theta_fc - soil.theta_wilt)[:, 0]  # theta_crit - theta_wilt (m3 m-3)
        root_frac = root_fractions(col["root_depth_m"])
        water = self._site_water(f, n_sets, p)
        return dict(**water,
            col=col, hc=hc, ch_n=ch_n, g_zd=C.GRAVITY * zd, ustar_ratio=friction_velocity_ratio(ch_n), dt=float(f.time_step_s), grid=grid,
            theta_sat=soil.theta_sat, theta_fc=soil.theta_fc, psi_sat_m=soil.psi_sat_m, b=soil.b, theta_wilt=soil.theta_wilt, ksat_m_s=soil.ksat_m_s,
            theta_crit=soil.theta_wilt + ramp.unsqueeze(-1),
            rsoil_slope=_RSOIL_SLOPE / soil.theta_sat[:, 0],
            inv_fc_span=1.0 / (soil.theta_fc[:, 0] - C.THETA_RES),
            root_frac=root_frac,
            transp_cap_mm=self._transpiration_cap_mm(ramp, root_frac, grid),
            root_zone_mm=root_zone_weights(col["root_depth_m"]) * grid.dz_mm,
            log_q10=torch.log(col["q10"]),
            c4_frac=self._expand(self._c4_fractions(f), n_sets),
        )

    def _textures(self, f: ForcingTensors, n_sets: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(sand, clay) mass fractions per column (batch,), by :func:`mdpl.ils.soil_texture.site_texture`."""
        vals = [site_texture(site, igbp, f.attrs[i] if f.attrs else {})
                for i, (site, igbp) in enumerate(zip(f.sites, f.igbp))]
        t = torch.as_tensor(vals, device=self.device, dtype=self.dtype)
        return self._expand(t[:, 0], n_sets), self._expand(t[:, 1], n_sets)

    def _site_water(self, f: ForcingTensors, n_sets: int, p: torch.Tensor) -> dict:
        """Per-column pond spill depth, baseflow ceiling, flooded months (batch, 12) and saturated start,
        by the rule of :mod:`mdpl.ils.site_water`."""
        rules = [site_water(site, igbp, f.attrs[i] if f.attrs else {})
                 for i, (site, igbp) in enumerate(zip(f.sites, f.igbp))]
        kw = dict(device=p.device, dtype=p.dtype)
        months = torch.tensor([[float(m in r.flood_months) for m in range(1, 13)] for r in rules], **kw)
        return dict(
            spill_mm=self._expand(torch.tensor([r.spill_kg_m2 for r in rules], **kw), n_sets),
            baseflow_max=self._expand(torch.tensor([r.baseflow_max_kg_m2_s for r in rules], **kw), n_sets),
            flood_months=self._expand(months, n_sets),
            # initial water-table depth (m); NaN: in equilibrium with field capacity
            zwt_start=self._expand(torch.tensor([math.nan if r.initial_water_table_m is None
                                                 else r.initial_water_table_m for r in rules], **kw), n_sets),
        )

    def _c4_fractions(self, f: ForcingTensors) -> torch.Tensor:
        """C4 fraction of each site's canopy (site,), by the rule of :mod:`mdpl.ils.c4`."""
        tair = f.data["Tair"].detach().cpu().numpy()
        precip = (f.data["Rainf"] + f.data["Snowf"]).detach().cpu().numpy()
        vals = [c4_fraction(site, igbp, f.attrs[i] if f.attrs else {}, f.time, tair[i], precip[i], f.time_step_s)
                for i, (site, igbp) in enumerate(zip(f.sites, f.igbp))]
        return torch.as_tensor(vals, device=self.device, dtype=self.dtype)

    @staticmethod
    def _transpiration_cap_mm(ramp: torch.Tensor, root_frac: torch.Tensor, grid: SoilGrid) -> torch.Tensor:
        """Root-zone supply per unit stress (kg m-2 per step per unit beta), shape (batch,).

        Transpiration is drawn from layer l in proportion to root_frac_l beta_l / beta. Capping
        it at beta (theta_crit - theta_wilt) min_l(dz_l / root_frac_l) per step means no layer
        ever gives more than its water above wilting point, so the minimum stomatal conductance
        cannot drain dry soil below wilting (and on to negative water contents).
        """
        return ramp * (grid.dz_mm / root_frac).amin(-1)

    def _initial_state(self, f: ForcingTensors, n_sets: int, static: dict):
        """Ts = first Tair, empty canopy, snow and pond, soil at field capacity and mean air temperature, the
        water table in equilibrium with it (:meth:`_initial_aquifer`) unless the site rule gives its depth
        (:mod:`mdpl.ils.site_water`; wetlands and paddies: at the surface): then the aquifer is full up to
        it and the layers wholly below it are saturated. The soil starts unfrozen, the snow albedo fresh."""
        ta = self._expand(f.data["Tair"], n_sets)
        ts = ta[:, 0].clone()
        zeros = torch.zeros_like(ts)
        theta_fc, theta_sat = static["theta_fc"].detach(), static["theta_sat"].detach()
        given = static["zwt_start"].unsqueeze(-1)
        below = layer_tops_m(theta_fc) >= given  # layers wholly below a given water table (NaN: none)
        theta = torch.where(below, theta_sat, theta_fc).expand(-1, N_LAYERS).clone()
        aquifer = self._initial_aquifer(static, theta)
        tsoil = ta[:, : first_year_steps(f)].mean(1, keepdim=True).expand(-1, N_LAYERS).clone()
        return ColumnState(ts=ts, wc=zeros, swe=zeros.clone(), theta=theta, tsoil=tsoil, pond=zeros.clone(),
                           aquifer=aquifer, tv=ts.clone(), tg=ts.clone(), alb_snow=torch.full_like(ts, C.SNOW_ALBEDO_NEW),
                           ice=torch.zeros_like(theta))

    @staticmethod
    def _initial_aquifer(static: dict, theta: torch.Tensor) -> torch.Tensor:
        """Aquifer storage (batch,) of the site rule's water table, else in equilibrium with ``theta``'s
        bottom layer (:func:`mdpl.ils.groundwater.equilibrium_water_table_m`: no flux at the start)."""
        given = static["zwt_start"]
        eq = equilibrium_water_table_m(theta[:, -1:].detach(), static["theta_sat"].detach(),
                                       static["psi_sat_m"].detach(), static["b"].detach())
        return aquifer_for_water_table(torch.where(torch.isnan(given), eq, given))

    @staticmethod
    def _storage_mm(state) -> torch.Tensor:
        """Column water (kg m-2): canopy, snow, soil, pond and aquifer (counted from a full aquifer)."""
        return state.wc + state.swe + layer_water_mm(state.theta).sum(-1) + state.pond + state.aquifer

    def _chunk_inputs(self, f: ForcingTensors, static: dict, n_sets: int, a: int, b: int) -> torch.Tensor:
        """State-independent terms (:class:`StepTerms`) of steps a..b, stacked as (step, term, batch)."""
        d = {k: v[:, a:b] for k, v in f.data.items()}
        dt = static["dt"]
        col = {k: v.unsqueeze(-1) for k, v in static["col"].items()}
        lai = d["LAI"].clamp_min(0.01)
        fveg = vegetation_cover(lai)
        ta, qa, ps = d["Tair"], d["Qair"], d["Psurf"]
        rho = ps / (C.R_DRY_AIR * ta * (1.0 + 0.608 * qa))
        rain_int = fveg * d["Rainf"] * dt
        site_terms = dict(
            ta=ta, qa=qa, cq=(thermo.EPSILON * thermo.ES0_PA) / ps, rho_cp=rho * C.CP_AIR, rho_veg=rho * fveg, rho_bare=rho * (1 - fveg),
            u=d["Wind"].clamp_min(C.MIN_WIND), sw=d["SWdown"].clamp_min(0.0), lw_abs=C.EMISSIVITY * d["LWdown"],
            lw_down=d["LWdown"],
            rain_int=rain_int, rain_thr=d["Rainf"] * dt - rain_int, snow_in=d["Snowf"] * dt,
            fveg=fveg, lai=lai, rh=(qa / qsat(ta, ps)).clamp(0.0, 1.0), co2=d["CO2air"], ps=ps,
            snow_vis=snow_masking(fveg, f.canopy_height_m.unsqueeze(-1)),
        )
        e = {k: self._expand(v, n_sets) for k, v in site_terms.items()}
        e["gross"], e["rd"], e["gross_g"], e["rd_g"], _ = canopy_photosynthesis(
            col["vcmax25"], col["bb_slope"], e["ta"], e["sw"], e["co2"], e["rh"], e["lai"], e["ps"],
            static["c4_frac"].unsqueeze(-1))
        e["k1"], e["k0"] = conductance_coefficients(col["bb_slope"], col["bb_intercept"], e["rh"], e["co2"],
                                                    e["lai"], e["ta"], e["ps"])
        alb = snow_free_albedo(e["fveg"], col["albedo_canopy"])
        e["rad_free"] = (1.0 - alb) * e["sw"] + e["lw_abs"]
        e["vis_sw"] = e["snow_vis"] * e["sw"]
        e["vis_alb_sw"] = e["vis_sw"] * alb
        e["sw_veg"] = e["fveg"] * (1.0 - col["albedo_canopy"]) * e["sw"]
        e["sw_veg_hidden"] = e["snow_vis"] * e["sw_veg"]
        e["wmax"] = col["interception_mm"] * e["lai"] + 1e-3
        e["inv_wmax"] = 1.0 / e["wmax"]
        e["rib_coef"] = richardson_coefficient(e["ta"], e["u"])
        month = torch.as_tensor(np.asarray(f.time[a:b].month) - 1, device=self.device)
        e["flooded"] = static["flood_months"].index_select(1, month)
        return torch.stack([e[k] for k in StepTerms._fields], 0).permute(2, 0, 1).contiguous()

    def _derived(self, x: torch.Tensor, raw: torch.Tensor, layered: torch.Tensor, s: dict) -> torch.Tensor:
        """All :data:`STEP_OUTPUTS` of a chunk (step, output, batch) from the raw step outputs."""
        r = RawOutputs(*raw.unbind(1))._asdict()
        t = StepTerms(*x.unbind(1))._asdict()
        inv_dt = 1.0 / s["dt"]
        theta = layered[:, 0]
        out = dict(r)
        out["NEE"] = r["Reco"] - r["GPP"]
        out["Evap"] = r["TVeg"] + r["ESoil"] + r["ECanop"] + r["SubSnow"] + r["EWater"]
        out["Qs"], out["Qsb"], out["Qsm"] = r["runoff_mm"] * inv_dt, r["drain_mm"] * inv_dt, r["melt_mm"] * inv_dt
        out["Qirrig"], out["Qrec"] = r["irrig_mm"] * inv_dt, r["recharge_mm"] * inv_dt
        out["Rainf"] = (t["rain_int"] + t["rain_thr"]) * inv_dt
        out["Snowf"] = t["snow_in"] * inv_dt
        out["RootMoist"] = (theta * s["root_zone_mm"]).sum(-1)
        out["energy_closure"] = r["Rnet"] - r["Qg"] - r["Qh"] - r["Qle"]
        return torch.stack([out[k] for k in STEP_OUTPUTS], 1)

    def _checkpointed(self, x: torch.Tensor, state, static: dict):
        """:meth:`_run_steps` as a reentrant checkpoint: the day runs without building a graph and is
        recomputed during backward, so memory holds only day boundaries. Every tensor that carries
        gradients goes in as an explicit input (use ``.backward()``, not ``torch.autograd.grad``)."""
        flat, rebuild = _flatten_static(static)
        n_state = len(state)

        def run(x_, *tensors):
            st, raw, lay = self._run_steps(x_, ColumnState(*tensors[:n_state]), rebuild(tensors[n_state:]), True)
            return (*st, raw, lay)

        out = checkpoint(run, x, *state, *flat, use_reentrant=True, preserve_rng_state=False)
        return ColumnState(*out[:n_state]), out[n_state], out[n_state + 1]

    def _compile_pays(self, total_steps: int) -> bool:
        """Whether this run should use the compiled step (``lsm.compile`` and the run's length)."""
        mode = self.config.compile
        if mode == "off" or self.compile_error is not None:
            return False
        return mode == "on" or total_steps >= COMPILE_MIN_STEPS

    def _step_function(self):
        """The step to run now: compiled for runs without gradients when chosen, else eager.

        Runs with gradients stay eager: compiling the backward too costs more
        than it saves for the short windows that calibration differentiates.
        """
        if not self._use_compiled or torch.is_grad_enabled():
            return self._step
        if self._compiled_step is None:
            self._compiled_step = torch.compile(self._step, dynamic=True)
        return self._compiled_step

    def _give_up_compiling(self, err: Exception) -> None:
        import warnings

        self.compile_error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        self._use_compiled = False
        warnings.warn(f"torch.compile of the land-model step failed ({self.compile_error}); running it eagerly "
                      "(results are the same, only slower; set lsm.compile: off to skip the attempt)", stacklevel=3)

    def _run_steps(self, x: torch.Tensor, state, static: dict, keep: bool):
        """Advance ``state`` over the steps of ``x``; return (state, raw (t, out, b), layered (t, 3, b, l))."""
        raw, layered = [], []
        step = self._step_function()
        for k in range(x.shape[0]):
            try:
                state, out_s, out_l = step(x[k], state, static)
            except Exception as err:  # noqa: BLE001 - a compiler failure (no C++ compiler, ...) falls back to eager
                if step is self._step:
                    raise
                self._give_up_compiling(err)
                step = self._step
                state, out_s, out_l = step(x[k], state, static)
            if keep:
                raw.append(out_s)
                layered.append(out_l)
        if not keep:
            return state, None, None
        return state, torch.stack(raw, 0), torch.stack(layered, 0)

    def _step(self, x: torch.Tensor, state: ColumnState, s: dict):
        """One time step for the whole batch: returns (new state, stacked :class:`RawOutputs`, (theta, tsoil, ice))."""
        t = StepTerms(*x.unbind(0))
        col, dt, grid = s["col"], s["dt"], s["grid"]
        theta, tsoil, ice = state.theta, state.tsoil, state.ice
        liquid = theta - ice  # only liquid water is transpired, evaporated and drained
        # interception and snow stores before the energy balance
        wc1, drip0 = canopy_drip(state.wc + t.rain_int, t.wmax)
        swe1 = state.swe + t.snow_in
        fsnow = snow_cover(swe1)
        alb_snow = refresh_snow_albedo(state.alb_snow, t.snow_in, state.swe)
        # canopy conductance with root-zone water stress; two_source: photosynthesis at the leaf temperature
        # of the previous step (this step's canopy balance needs the conductance before it has Tv)
        beta, beta_layers = soil_water_stress(liquid, s["theta_crit"], s["root_frac"], s["theta_wilt"])
        if self._two_source:
            gross, _, gross_g, rd_g, _ = canopy_photosynthesis(col["vcmax25"], col["bb_slope"], state.tv, t.sw, t.co2,
                                                               t.rh, t.lai, t.ps, s["c4_frac"])
        else:
            gross, gross_g, rd_g = t.gross, t.gross_g, t.rd_g
        gc = t.k1 * (beta * gross_g - rd_g).clamp_min(0.0) + t.k0
        # soil evaporation: SiB2 resistance and a linear efficiency that empties the top layer smoothly
        th1 = liquid[:, 0]
        rsoil = col["rsoil_base"] * torch.exp(_RSOIL_SLOPE - s["rsoil_slope"] * th1)
        eff_soil = ((th1 - C.THETA_RES) * s["inv_fc_span"]).clamp(0.0, 1.0)
        ga = aerodynamic_conductance(s["ch_n"], s["g_zd"], t.u, t.ta, state.ts, t.rib_coef)
        ra = 1.0 / ga
        heat_cap, cond = layer_properties(theta, ice, grid.dz_m, grid.theta_sat)
        rad_in = t.rad_free - fsnow * (alb_snow * t.vis_sw - t.vis_alb_sw)  # absorbed SW + eps LWdown of the scene, W m-2
        g_ground = ground_conductance(cond[:, 0], swe1)
        if self._two_source:
            sol = self._two_source_balance(t, state, s, ga, gc, rsoil, eff_soil, fsnow, wc1, beta, rad_in, g_ground)
            tv, tg = sol.tv, sol.tg
        else:
            rho_g_wet = t.rho_veg * ga
            # the pond evaporates at the potential rate from the bare ground it covers; the soil from the rest
            rho_open = t.rho_bare * (1.0 - fsnow)
            pond_rate, pond_k_dt, rho_g_pond = evaporation_coefficients(state.pond, rho_open * ga, dt)
            terms = SurfaceTerms(
                rad_in=rad_in, tair=t.ta, qair=t.qa, cq=t.cq, g_heat=t.rho_cp * ga,
                g_ground=g_ground, t_soil1=tsoil[:, 0],
                rho_g_soil=rho_open * (1.0 - open_water_cover(state.pond)) * eff_soil / (ra + rsoil),
                rho_g_snow=t.rho_bare * fsnow * ga,
                rho_g_transp=t.rho_veg * (1.0 - wc1 * t.inv_wmax) / (ra + 1.0 / gc),
                rho_g_wet=rho_g_wet, wc_rate=wc1 * (1.0 / dt), wet_k_dt=rho_g_wet * t.inv_wmax * dt,
                tr_supply=beta * s["transp_cap_mm"] * (1.0 / dt),
                pond_rate=pond_rate, pond_k_dt=pond_k_dt, rho_g_pond=rho_g_pond,
            )
            sol = solve_surface(terms, state.ts, self.config.newton_iterations)
            tv = tg = sol.ts
        # stores after evaporation
        wc_new, drip1 = canopy_drip(wc1 - sol.e_wet * dt, t.wmax)
        swe2 = swe1 - sol.e_snow * dt
        # the conductive flux Qg enters the top soil layer; heat above freezing under snow melts it
        tsoil, melt = snowmelt(step_temperature(tsoil, heat_cap, cond, sol.qg, dt, grid.inv_node_dist),
                               heat_cap, swe2)
        # transpiration by root fraction x stress: a layer at wilting point gives nothing (beta = 0 -> e_tr = 0)
        rb = s["root_frac"] * beta_layers
        rb_sum = rb.sum(-1)
        share = torch.where(rb_sum > 0, rb_sum, torch.ones_like(rb_sum))
        extraction = (sol.e_tr * dt / share).unsqueeze(-1) * rb + (sol.e_soil * dt).unsqueeze(-1) * grid.top
        # the pond (after evaporation) and any irrigation offer themselves to the soil with the rain;
        # what the soil cannot take fills the pond to its spill depth and runs off beyond it
        pond1 = state.pond - sol.e_pond * dt
        irr = irrigation(pond1, t.flooded)
        theta_new, excess, _ = soil_step(theta, extraction, t.rain_thr + drip0 + drip1 + melt + pond1 + irr,
                                         grid, dt, s["ksat_m_s"], free_drainage=False, ice=ice)
        pond_new, runoff = spill(excess, s["spill_mm"])
        # the bottom layer exchanges with the aquifer (recharge or capillary rise); baseflow drains it
        theta_new, aquifer_new, recharge, drainage, zwt = groundwater_step(
            theta_new, state.aquifer, grid.dz_mm, s["theta_fc"], s["theta_sat"], s["psi_sat_m"], s["b"],
            s["ksat_m_s"], s["baseflow_max"], dt, ice=ice)
        if self.config.frozen_soil:  # freeze or thaw with the heat of crossing 0 degC (C from the step start)
            tsoil, ice, _ = phase_change(tsoil, heat_cap, theta_new, ice, grid.dz_mm, grid.theta_sat,
                                         s["psi_sat_m"], s["b"])
        reco = ecosystem_respiration(col["resp_base"], s["log_q10"], tsoil[:, 0], beta)
        swe_new = swe2 - melt
        raw = RawOutputs(
            Qle=sol.qle, Qh=sol.qh, Rnet=sol.rnet, Qg=sol.qg, GPP=beta * gross, Reco=reco, TVeg=sol.e_tr,
            ESoil=sol.e_soil, ECanop=sol.e_wet, SubSnow=sol.e_snow, runoff_mm=runoff, drain_mm=drainage,
            melt_mm=melt, Tsurf=sol.ts, SWE=swe_new, CanopInt=wc_new, SoilWaterStress=beta,
            energy_residual=sol.residual, EWater=sol.e_pond, irrig_mm=irr, recharge_mm=recharge, SurfStor=pond_new,
            GWStor=aquifer_new, WaterTableD=zwt, VegT=tv, GroundT=tg, SAlbedo=alb_snow,
        )
        out_l = torch.stack([theta_new, tsoil, ice], 0)
        new = ColumnState(ts=sol.ts, wc=wc_new, swe=swe_new, theta=theta_new, tsoil=tsoil, pond=pond_new,
                          aquifer=aquifer_new, tv=tv, tg=tg, alb_snow=age_snow_albedo(alb_snow, tg, dt), ice=ice)
        return new, torch.stack(raw, 0), out_l

    def _two_source_balance(self, t: StepTerms, state: ColumnState, s: dict, ga, gc, rsoil, eff_soil, fsnow, wc1,
                            beta, rad_in, g_ground):
        """The canopy + ground balance of one step (:mod:`mdpl.ils.two_source`); conductances in m s-1.

        Leaves (transpiration through stomata ``gc`` and the leaf boundary layer, the wet canopy through the
        boundary layer) exchange with the canopy air; the ground (soil behind ``rsoil``, pond, snow) through the
        under-canopy conductance. The canopy absorbs its share of the scene's SW, less where visible snow covers it.
        """
        dt = s["dt"]
        rho = t.rho_cp * (1.0 / C.CP_AIR)
        ustar = s["ustar_ratio"] * t.u
        gb = leaf_boundary_conductance(t.lai, ustar)
        gg = under_canopy_conductance(t.lai, ustar)
        rho_gb = rho * gb
        rho_open = rho * (1.0 - fsnow)
        pond_rate, pond_k_dt, rho_g_pond = evaporation_coefficients(state.pond, rho_open * gg, dt)
        sw_veg = t.sw_veg - fsnow * t.sw_veg_hidden
        terms = TwoSourceTerms(
            sw_veg=sw_veg, sw_ground=rad_in - C.EMISSIVITY * t.lw_down - sw_veg, lw_down=t.lw_down, eps_veg=canopy_emissivity(t.lai),
            tair=t.ta, qair=t.qa, cq=t.cq, h_air=t.rho_cp * ga, h_veg=t.rho_cp * gb, h_ground=t.rho_cp * gg,
            w_air=rho * ga, g_ground=g_ground, t_soil1=state.tsoil[:, 0],
            rho_g_transp=rho * (1.0 - wc1 * t.inv_wmax) / (1.0 / gb + 1.0 / gc),
            rho_g_wet=rho_gb, wc_rate=wc1 * (1.0 / dt), wet_k_dt=rho_gb * t.inv_wmax * dt,
            tr_supply=beta * s["transp_cap_mm"] * (1.0 / dt),
            rho_g_soil=rho_open * (1.0 - open_water_cover(state.pond)) * eff_soil / (1.0 / gg + rsoil),
            rho_g_snow=rho * fsnow * gg, pond_rate=pond_rate, pond_k_dt=pond_k_dt, rho_g_pond=rho_g_pond,
        )
        return solve_two_source(terms, state.tv, state.tg, self.config.newton_iterations)
