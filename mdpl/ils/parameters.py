"""The calibrated parameters of the embedded land model: names, units, bounds, defaults.

:class:`ParameterSpace` owns the maps between physical units (how parameters
travel between modules) and the unit cube (used only inside samplers and
networks). Parameters spanning more than a decade are mapped on a log scale.
Defaults come from a per-IGBP lookup table, as in MATSIRO's per-land-cover
table; values follow SiB2 (Sellers et al. 1996), CLM5 (Lawrence et al. 2019)
and JULES (Best et al. 2011) for the corresponding plant functional types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mdpl.errors import ModelError


@dataclass(frozen=True)
class ParameterSpec:
    """One calibrated parameter: physical bounds (literature ranges) and meaning."""

    name: str
    units: str
    lower: float
    upper: float
    log: bool
    description: str


#: the calibrated parameters, in order (lower/upper: physical literature bounds)
SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("vcmax25", "umol m-2 s-1", 10.0, 150.0, False,
                  "maximum Rubisco carboxylation rate of top leaves at 25 degC (Kattge et al. 2009 range)"),
    ParameterSpec("bb_slope", "1", 4.0, 16.0, False, "Ball-Berry stomatal slope m (C4 ~4, C3 ~9)"),
    ParameterSpec("bb_intercept", "mol m-2 s-1", 0.001, 0.08, True,
                  "Ball-Berry intercept b: minimum leaf conductance to water vapour"),
    ParameterSpec("albedo_canopy", "1", 0.07, 0.26, False, "broadband shortwave albedo of a closed canopy"),
    ParameterSpec("z0_frac", "1", 0.02, 0.2, False, "momentum roughness length as a fraction of canopy height"),
    ParameterSpec("root_depth_m", "m", 0.3, 3.0, True, "depth above which 95 % of the roots lie"),
    ParameterSpec("stress_onset", "1", 0.2, 1.0, False,
                  "fraction of plant-available water (field capacity - wilting) below which stomata close"),
    ParameterSpec("rsoil_base", "s m-1", 10.0, 1000.0, True,
                  "soil evaporation resistance of a saturated top layer (SiB2 form)"),
    ParameterSpec("interception_mm", "kg m-2", 0.05, 0.5, True, "canopy interception capacity per unit LAI"),
    ParameterSpec("resp_base", "umol m-2 s-1", 0.3, 10.0, True,
                  "ecosystem respiration at 10 degC soil temperature and no water stress"),
    ParameterSpec("q10", "1", 1.3, 3.5, False, "respiration increase per 10 K of soil temperature"),
    ParameterSpec("ksat_factor", "1", 0.1, 10.0, True,
                  "multiplier on the Cosby et al. (1984) saturated hydraulic conductivity of the site's texture "
                  "(the regression's scatter is about half a decade; macropores raise it)"),
)

# Per-IGBP defaults, same order as SPECS:
#  vcmax25, m, b, albedo, z0_frac, root_depth, stress_onset, rsoil, interception, R10, Q10, ksat_factor
#  (ksat_factor 1: the pedotransfer value, for every class)
_DEFAULTS: dict[str, tuple[float, ...]] = {
    "ENF": (50.0, 9.0, 0.010, 0.10, 0.07, 1.5, 0.5, 60.0, 0.20, 2.0, 2.0, 1.0),
    "EBF": (55.0, 9.0, 0.010, 0.12, 0.07, 3.0, 0.25, 60.0, 0.20, 4.0, 2.0, 1.0),  # deep roots: dry-season ET holds up
    "DNF": (45.0, 9.0, 0.010, 0.13, 0.07, 1.5, 0.5, 60.0, 0.15, 2.0, 2.0, 1.0),
    "DBF": (57.0, 9.0, 0.010, 0.15, 0.07, 2.0, 0.5, 60.0, 0.15, 2.5, 2.0, 1.0),
    "MF": (52.0, 9.0, 0.010, 0.13, 0.07, 2.0, 0.5, 60.0, 0.15, 2.2, 2.0, 1.0),
    "CSH": (50.0, 9.0, 0.010, 0.17, 0.10, 1.5, 0.4, 60.0, 0.10, 1.5, 2.0, 1.0),
    "OSH": (45.0, 9.0, 0.010, 0.18, 0.10, 1.2, 0.4, 80.0, 0.10, 1.0, 2.0, 1.0),
    "WSA": (50.0, 8.0, 0.010, 0.16, 0.08, 2.0, 0.4, 60.0, 0.12, 1.8, 2.0, 1.0),
    "SAV": (45.0, 7.0, 0.010, 0.17, 0.10, 1.8, 0.4, 60.0, 0.10, 1.5, 2.0, 1.0),
    "GRA": (55.0, 9.0, 0.010, 0.19, 0.12, 0.6, 0.5, 50.0, 0.10, 2.0, 2.0, 1.0),
    "WET": (55.0, 9.0, 0.010, 0.15, 0.12, 0.5, 0.6, 30.0, 0.10, 2.5, 2.0, 1.0),
    "CRO": (80.0, 9.0, 0.010, 0.19, 0.12, 1.0, 0.55, 50.0, 0.10, 2.5, 2.0, 1.0),
    "CVM": (60.0, 9.0, 0.010, 0.17, 0.10, 1.2, 0.5, 50.0, 0.12, 2.2, 2.0, 1.0),
}


def _lib(x: Any):
    return torch if isinstance(x, torch.Tensor) else np


class ParameterSpace:
    """Named parameters with physical bounds, per-IGBP defaults and unit-cube maps.

    ``lower``/``upper`` are numpy arrays in physical units. ``to_unit`` and
    ``from_unit`` are elementwise affine maps (affine in log for parameters
    with ``log=True``) that accept numpy arrays or torch tensors of shape
    ``(..., n)`` and keep gradients.
    """

    def __init__(self, specs: tuple[ParameterSpec, ...] = SPECS,
                 defaults: dict[str, tuple[float, ...]] | None = None):
        self.specs = tuple(specs)
        self.names: list[str] = [s.name for s in self.specs]
        self.units: list[str] = [s.units for s in self.specs]
        self.lower = np.array([s.lower for s in self.specs], dtype=float)
        self.upper = np.array([s.upper for s in self.specs], dtype=float)
        self.log = np.array([s.log for s in self.specs], dtype=bool)
        self.descriptions: list[str] = [s.description for s in self.specs]
        if np.any(self.lower >= self.upper):
            bad = [n for n, lo, hi in zip(self.names, self.lower, self.upper) if lo >= hi]
            raise ModelError(f"parameter bounds empty for {', '.join(bad)}")
        self._defaults = dict(_DEFAULTS if defaults is None else defaults)
        #: parameter -> the only output fluxes it can change (by the model's structure); absent: any flux
        self.reaches: dict[str, tuple[str, ...]] = {k: v for k, v in REACHES.items() if k in self.names}

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def igbp_classes(self) -> list[str]:
        return sorted(self._defaults)

    def __repr__(self) -> str:
        return f"ParameterSpace({', '.join(self.names)})"

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ModelError(f"unknown parameter {name!r}; known: {', '.join(self.names)}") from None

    # -- defaults ---------------------------------------------------------------
    def defaults(self, igbp: str) -> np.ndarray:
        """Default physical values for IGBP class ``igbp`` (clipped into the bounds)."""
        key = str(igbp).strip().upper()
        if key not in self._defaults:
            raise ModelError(f"no default parameters for IGBP class {igbp!r}; known: {', '.join(self.igbp_classes)}")
        full = dict(zip([s.name for s in SPECS], self._defaults[key]))
        vals = np.array([full[nm] for nm in self.names], dtype=float)
        return np.clip(vals, self.lower, self.upper)

    # -- unit cube --------------------------------------------------------------
    def _bounds_like(self, x):
        lib = _lib(x)
        lo = np.where(self.log, np.log(self.lower), self.lower)
        hi = np.where(self.log, np.log(self.upper), self.upper)
        if lib is torch:
            kw = dict(dtype=x.dtype if x.is_floating_point() else torch.get_default_dtype(), device=x.device)
            return torch.as_tensor(lo, **kw), torch.as_tensor(hi, **kw), torch.as_tensor(self.log, device=x.device)
        return lo, hi, self.log

    def to_unit(self, x):
        """Physical values ``(..., n)`` -> unit cube (0 at ``lower``, 1 at ``upper``)."""
        lib = _lib(x)
        x = x if lib is torch else np.asarray(x, dtype=float)
        self._check_last_dim(x)
        lo, hi, lg = self._bounds_like(x)
        xt = lib.where(lg, lib.log(lib.clip(x, 1e-30, None)) if lib is np else torch.log(x.clamp_min(1e-30)), x)
        return (xt - lo) / (hi - lo)

    def from_unit(self, u):
        """Unit cube ``(..., n)`` -> physical values."""
        lib = _lib(u)
        u = u if lib is torch else np.asarray(u, dtype=float)
        self._check_last_dim(u)
        lo, hi, lg = self._bounds_like(u)
        y = lo + u * (hi - lo)
        return lib.where(lg, lib.exp(y), y)

    def _check_last_dim(self, x) -> None:
        if x.shape[-1:] != (self.n,):
            raise ModelError(f"parameter array has last dimension {tuple(x.shape)[-1:]} but the space has "
                             f"{self.n} parameters ({', '.join(self.names)})")

    # -- checks and conversions -------------------------------------------------
    def validate(self, x, rtol: float = 1e-6) -> None:
        """Raise :class:`ModelError` naming the first parameter outside its bounds (or not finite)."""
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
        self._check_last_dim(a)
        a = a.reshape(-1, self.n)
        span = self.upper - self.lower
        for j, name in enumerate(self.names):
            col = a[:, j]
            if not np.all(np.isfinite(col)):
                raise ModelError(f"parameter {name} is not finite")
            lo, hi = self.lower[j] - rtol * span[j], self.upper[j] + rtol * span[j]
            if np.any(col < lo) or np.any(col > hi):
                v = col[(col < lo) | (col > hi)][0]
                raise ModelError(f"parameter {name}={v:g} {self.units[j]} outside its bounds "
                                 f"[{self.lower[j]:g}, {self.upper[j]:g}]")

    def restrict(self, lower, upper) -> ParameterSpace:
        """A space with narrower bounds (each within the current ones)."""
        lower = np.broadcast_to(np.asarray(lower, dtype=float), (self.n,))
        upper = np.broadcast_to(np.asarray(upper, dtype=float), (self.n,))
        specs = []
        for s, lo, hi in zip(self.specs, lower, upper):
            if not (s.lower <= lo < hi <= s.upper):
                raise ModelError(f"restricted bounds [{lo:g}, {hi:g}] for {s.name} must lie within "
                                 f"[{s.lower:g}, {s.upper:g}] and be non-empty")
            specs.append(ParameterSpec(s.name, s.units, float(lo), float(hi), s.log, s.description))
        return ParameterSpace(tuple(specs), self._defaults)

    def to_dict(self, x) -> dict[str, float]:
        """One parameter set ``(n,)`` -> ``{name: value}`` (physical units, plain floats)."""
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
        if a.shape != (self.n,):
            raise ModelError(f"to_dict expects one parameter set of shape ({self.n},), got {a.shape}")
        return {k: float(v) for k, v in zip(self.names, a)}

    def from_dict(self, d: dict[str, float], igbp: str | None = None) -> np.ndarray:
        """``{name: value}`` -> array; names left out take the ``igbp`` defaults (else an error)."""
        unknown = sorted(set(d) - set(self.names))
        if unknown:
            raise ModelError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self.names)}")
        missing = [k for k in self.names if k not in d]
        if missing and igbp is None:
            raise ModelError(f"missing parameter(s) {', '.join(missing)} and no IGBP class to take defaults from")
        base = self.defaults(igbp) if missing else np.zeros(self.n)
        out = np.array([float(d[k]) if k in d else base[i] for i, k in enumerate(self.names)])
        return out

    def table(self) -> list[dict[str, Any]]:
        """Rows for documentation: name, units, bounds, scale, description."""
        return [dict(name=s.name, units=s.units, lower=s.lower, upper=s.upper,
                     scale="log" if s.log else "linear", description=s.description) for s in self.specs]


#: parameters that by the model's structure reach only some fluxes: ecosystem respiration (R10, Q10) enters
#: NEE alone, never the energy balance, so no fit to Qle/Qh may move it (mdpl.calibrate.sensitivity.free_mask)
REACHES: dict[str, tuple[str, ...]] = {"resp_base": ("NEE",), "q10": ("NEE",)}

#: the parameter space of the embedded model
PARAMETER_SPACE = ParameterSpace()
