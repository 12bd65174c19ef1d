"""One typed configuration for a whole study, loaded from YAML.

Unknown keys and wrong types are :class:`mdpl.ConfigError`. The resolved
configuration is saved next to every result (:func:`save_config`). Each
section belongs to one stage of the pipeline and is passed down explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mdpl.errors import ConfigError

#: Environment variable that points at a directory of flux-tower files.
DATA_DIR_ENV = "MDPL_DATA_DIR"


def default_data_dir() -> Path | None:
    """``$MDPL_DATA_DIR`` if set, else ``../shared/data`` beside the checkout if it exists."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return here if here.is_dir() else None


@dataclass
class DataConfig:
    """Where forcing/flux files come from and how they are aggregated."""

    data_dir: str | None = None  # None: $MDPL_DATA_DIR, ../shared/data, else synthetic
    sites: list[str] = field(default_factory=list)  # empty: every site found
    min_measured_fraction: float = 0.75  # CalLMIP: drop days with >25 % gap-filled steps
    corrected_fluxes: bool = False  # calibrate against Qle_cor/Qh_cor instead of Qle/Qh
    synthetic_years: int = 2
    synthetic_sites: list[str] = field(default_factory=lambda: ["DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag"])


@dataclass
class LsmConfig:
    """The embedded land model run."""

    spinup_max_years: int = 5
    spinup_tolerance: float = 1e-3  # relative change of column soil water between cycles
    newton_iterations: int = 4  # fixed Newton iterations for the surface temperature
    dtype: str = "float32"  # float32 | float64
    checkpoint_days: bool = True  # recompute each day in backward: memory bounded over long runs; use .backward(), not autograd.grad
    compile: str = "auto"  # auto | on | off: torch.compile the time step for runs without gradients (auto: long runs only)
    energy_balance: str = "one_source"  # one_source: one skin temperature | two_source: canopy over ground (mdpl.ils.two_source)
    frozen_soil: bool = True  # soil water freezes and thaws (latent heat, ice impedance); false: it never freezes


@dataclass
class EnsembleConfig:
    """Perturbed parameter ensemble (members per site; ``*_full`` used when ``mode: full``)."""

    n_members: int = 128  # the embedded model costs nearly the same for 64 or 128 sets (batched)
    n_members_full: int = 256
    sampler: str = "sobol"  # sobol | lhs
    batch_size: int = 256
    span: str = "train"  # train: only each site's calibration period (halves the cost for 2-year sites) | all
    max_pad_days: float = 400.0  # sites whose records differ by <= this many days share one land-model call (shorter ones padded)


@dataclass
class SurrogateConfig:
    """Surrogate networks and their training (``epochs_full`` used when ``mode: full``)."""

    kind: str = "multitask"  # multitask | singletask
    tasks: list[str] = field(default_factory=lambda: ["Qle", "Qh", "NEE"])
    hidden_size: int = 32  # forcing encoder (multitask) / per-flux LSTM (singletask unless set below)
    singletask_hidden_size: int = 0  # 0: matched to the multitask surrogate's weight count (fair MdPL vs dPL)
    n_experts: int = 2  # shared experts (MMoE)
    task_experts: int = 1  # private experts per task (PLE); 0 = plain MMoE
    expert_size: int = 0  # 0: same as hidden_size
    state_size: int = 16  # parameter-conditioned state LSTM; 0 disables
    epochs: int = 30
    epochs_full: int = 80
    patience: int = 8  # early stopping on the validation members; 0 disables
    batch_size: int = 40  # parameter sets per step, spread over the sites of the step
    sites_per_batch: int = 8  # sites per step (0: all)
    window_days: int = 240  # training windows of this many days (0: whole series)
    warmup_days: int = 60  # days at the start of a window left out of the loss
    learning_rate: float = 1e-2
    weight_decay: float = 1e-5
    val_fraction: float = 0.15  # members per site held out for early stopping
    test_fraction: float = 0.15  # members per site held out for the fidelity report


@dataclass
class CalibrationConfig:
    """Parameter generator training."""

    mode: str = "all"  # all: one generator g(forcing, attributes) for every site (the paper) | site: free parameters per site | pft
    task_weights: dict[str, float] = field(default_factory=lambda: {"Qle": 1.0, "Qh": 1.0})
    epochs: int = 200
    learning_rate: float = 1e-2
    sources: list[str] = field(default_factory=lambda: ["default", "mdpl", "dpl", "direct"])
    hidden_size: int = 32  # width of the generator MLP
    patience: int | None = None  # stop after this many epochs without improvement (None: all epochs)
    prior_weight: float = 0.0  # pull towards the PFT defaults: weight x mean squared unit-cube distance (0: none)
    trust_radius: float = 0.0  # MdPL/dPL: parameters within this unit-cube distance of the PFT defaults (0: whole box)
    refine_rounds: int = 0  # MdPL/dPL: land-model runs around the calibrated parameters, surrogate retrained, recalibrated
    refine_members: int = 24  # runs per site per refinement round (the calibrated set and its neighbours)
    refine_spread: float = 0.08  # neighbours: Gaussian spread in the unit cube
    no_worse_weight: float = 0.0  # penalise any calibrated flux whose error rises above its PFT-default value (0: none)
    quick_epochs: int = 150  # generator epochs in quick mode
    direct_epochs: int = 40  # direct calibration (through the land model) epochs in full mode
    direct_quick_epochs: int = 4  # quick mode: a smoke run of the direct route (CPU cost ~ days x epochs)
    direct_quick_days: int = 14  # quick mode: direct/classical calibration see only this many training days
    direct_learning_rate: float = 1e-1
    classical_method: str = "cmaes"  # cmaes | de
    classical_evals: int = 400  # land-model evaluations per site in full mode
    classical_quick_evals: int = 64
    target_basis: str = "observed"  # observed | corrected | closed | bowen | ef (evaporative fraction + available energy): what calibration fits (mdpl.calibrate.targets)
    screen: bool = True  # Sobol screen through the surrogate: parameters the targets cannot see stay at their PFT defaults
    screen_threshold: float = 0.05  # total-order Sobol index below which a parameter is left at its default
    screen_samples: int = 128  # Saltelli base samples (a power of 2); cost n x (P + 2) surrogate runs per site
    ridge_hold: bool = False  # of two parameters the targets cannot tell apart but NEE can, hold the NEE-heavier one (mdpl.calibrate.identifiability)
    ridge_cosine: float = 0.95  # |cosine| of two target patterns above which they form a ridge
    ridge_moves: float = 0.5  # hold only when the ridge moves the uncalibrated fluxes by this fraction of the held parameter's own effect
    ridge_dominance: float = 2.0  # ... and the held side is this many times as uncalibrated-heavy per unit target effect
    select: str = "land_model"  # land_model | surrogate: which generator checkpoint is kept (land-model loss on training days, or the surrogate's)
    candidates: int = 4  # generator checkpoints (besides the surrogate's best) checked on the land model; the PFT defaults are always a candidate
    seeds: int = 1  # surrogates and generators trained with this many seeds (seed, seed+1, ...) on one ensemble: the spread
    gap_threshold: float = 0.5  # warn when the surrogate-model daily RMSE at the calibrated parameters exceeds this fraction of the observed std


@dataclass
class Config:
    """A whole study: data -> land model -> ensemble -> surrogate -> calibration."""

    mode: str = "quick"  # quick | full
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    out_dir: str = "runs/default"
    data: DataConfig = field(default_factory=DataConfig)
    lsm: LsmConfig = field(default_factory=LsmConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    surrogate: SurrogateConfig = field(default_factory=SurrogateConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {_check_type(k, args[0], where): _check_type(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _build(cls: type, raw: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}" if where else k) for k, v in raw.items()}
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    """Check values that types alone do not catch."""
    if cfg.mode not in ("quick", "full"):
        raise ConfigError(f"mode: expected 'quick' or 'full', got {cfg.mode!r}")
    if not 0.0 <= cfg.data.min_measured_fraction <= 1.0:
        raise ConfigError(f"data.min_measured_fraction must lie in [0, 1], got {cfg.data.min_measured_fraction}")
    c = cfg.calibration
    if not 0.0 <= c.trust_radius <= 1.0:
        raise ConfigError(f"calibration.trust_radius must lie in [0, 1] (unit cube), got {c.trust_radius}")
    if c.refine_rounds < 0 or c.refine_members < 1 or not 0.0 < c.refine_spread <= 1.0:
        raise ConfigError(f"calibration.refine_*: need refine_rounds >= 0, refine_members >= 1 and 0 < refine_spread <= 1, "
                          f"got {c.refine_rounds}, {c.refine_members}, {c.refine_spread}")
    for name in ("prior_weight", "no_worse_weight"):
        if getattr(c, name) < 0:
            raise ConfigError(f"calibration.{name} must be >= 0, got {getattr(c, name)}")
    if cfg.lsm.compile not in ("auto", "on", "off"):
        raise ConfigError(f"lsm.compile: expected 'auto', 'on' or 'off', got {cfg.lsm.compile!r}")
    if cfg.lsm.energy_balance not in ("one_source", "two_source"):
        raise ConfigError(f"lsm.energy_balance: expected 'one_source' or 'two_source', got {cfg.lsm.energy_balance!r}")
    if c.target_basis not in ("observed", "corrected", "closed", "bowen", "ef"):
        raise ConfigError(f"calibration.target_basis: expected observed, corrected, closed, bowen or ef, got {c.target_basis!r}")
    if c.select not in ("land_model", "surrogate"):
        raise ConfigError(f"calibration.select: expected 'land_model' or 'surrogate', got {c.select!r}")
    if not 0.0 <= c.screen_threshold < 1.0:
        raise ConfigError(f"calibration.screen_threshold must lie in [0, 1), got {c.screen_threshold}")
    if not 0.0 < c.ridge_cosine <= 1.0 or c.ridge_moves < 0.0 or c.ridge_dominance < 1.0:
        raise ConfigError(f"calibration.ridge_cosine must lie in (0, 1], ridge_moves be >= 0 and ridge_dominance >= 1, "
                          f"got {c.ridge_cosine}, {c.ridge_moves}, {c.ridge_dominance}")
    if c.screen_samples < 8 or c.screen_samples & (c.screen_samples - 1):
        raise ConfigError(f"calibration.screen_samples must be a power of 2 >= 8, got {c.screen_samples}")
    if not 1 <= c.seeds <= 20:
        raise ConfigError(f"calibration.seeds must lie in 1..20, got {c.seeds}")
    if c.candidates < 0 or not c.gap_threshold > 0:
        raise ConfigError(f"calibration.candidates must be >= 0 and gap_threshold > 0, got {c.candidates}, {c.gap_threshold}")
    if cfg.ensemble.sampler not in ("sobol", "lhs"):
        raise ConfigError(f"ensemble.sampler: expected 'sobol' or 'lhs', got {cfg.ensemble.sampler!r}")
    if cfg.surrogate.kind not in ("multitask", "singletask"):
        raise ConfigError(f"surrogate.kind: expected 'multitask' or 'singletask', got {cfg.surrogate.kind!r}")
    if cfg.calibration.mode not in ("site", "pft", "all"):
        raise ConfigError(f"calibration.mode: expected 'site', 'pft' or 'all', got {cfg.calibration.mode!r}")
    bad = [s for s in cfg.calibration.sources if s not in ("default", "mdpl", "dpl", "direct", "classical")]
    if bad:
        raise ConfigError(f"calibration.sources: unknown source(s) {', '.join(bad)}; allowed: default, mdpl, dpl, direct, classical")
    if cfg.calibration.classical_method not in ("cmaes", "de"):
        raise ConfigError(f"calibration.classical_method: expected 'cmaes' or 'de', got {cfg.calibration.classical_method!r}")
    _check_ranges(cfg)
    return cfg


#: the largest ensemble (members per site) a study accepts: ~9 GB of daily fluxes per two-year site already
MAX_MEMBERS = 100_000
#: section.key -> (lowest, highest) allowed value (None: no bound); every float must also be finite
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "seed": (0, 2**32 - 1),
    "data.synthetic_years": (0.1, 100),
    "lsm.spinup_max_years": (0, 100),
    "lsm.newton_iterations": (1, 100),
    "ensemble.n_members": (1, MAX_MEMBERS),
    "ensemble.n_members_full": (1, MAX_MEMBERS),
    "ensemble.batch_size": (1, MAX_MEMBERS),
    "ensemble.max_trim_days": (0, 31),
    "surrogate.hidden_size": (1, None),
    "surrogate.singletask_hidden_size": (0, None),
    "surrogate.n_experts": (1, None),
    "surrogate.task_experts": (0, None),
    "surrogate.expert_size": (0, None),
    "surrogate.state_size": (0, None),
    "surrogate.epochs": (1, None),
    "surrogate.epochs_full": (1, None),
    "surrogate.patience": (0, None),
    "surrogate.batch_size": (1, None),
    "surrogate.sites_per_batch": (0, None),
    "surrogate.window_days": (0, None),
    "surrogate.warmup_days": (0, None),
    "surrogate.weight_decay": (0, None),
    "surrogate.val_fraction": (0, 0.9),
    "surrogate.test_fraction": (0, 0.9),
    "calibration.epochs": (1, None),
    "calibration.hidden_size": (1, None),
    "calibration.patience": (1, None),
    "calibration.quick_epochs": (1, None),
    "calibration.direct_epochs": (1, None),
    "calibration.direct_quick_epochs": (1, None),
    "calibration.direct_quick_days": (0, None),  # 0: the whole record
    "calibration.classical_evals": (1, None),
    "calibration.classical_quick_evals": (1, None),
}
#: values that must be > 0 (not only >= 0)
_POSITIVE = ("lsm.spinup_tolerance", "surrogate.learning_rate", "calibration.learning_rate",
             "calibration.direct_learning_rate")


def _values(obj, prefix: str = ""):
    """(dotted name, value) of every leaf of a config (dicts are leaves)."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            yield from _values(v, name + ".")
        else:
            yield name, v


def _check_ranges(cfg: Config) -> None:
    """Ranges, finiteness and the few cross-field rules; one ConfigError naming the key."""
    import math

    for name, v in _values(cfg):
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{name}: must be a finite number, got {v}")
        if name in _RANGES and v is not None:
            lo, hi = _RANGES[name]
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                span = f">= {lo}" if hi is None else f"between {lo} and {hi}"
                raise ConfigError(f"{name}: must be {span}, got {v}")
        if name in _POSITIVE and not v > 0:
            raise ConfigError(f"{name}: must be > 0, got {v}")
    if cfg.lsm.dtype not in ("float32", "float64"):
        raise ConfigError(f"lsm.dtype: expected 'float32' or 'float64', got {cfg.lsm.dtype!r}")
    if cfg.ensemble.span not in ("train", "all"):
        raise ConfigError(f"ensemble.span: expected 'train' or 'all', got {cfg.ensemble.span!r}")
    s = cfg.surrogate
    fluxes = ("Qle", "Qh", "NEE")
    if not s.tasks or len(set(s.tasks)) != len(s.tasks) or any(t not in fluxes for t in s.tasks):
        raise ConfigError(f"surrogate.tasks: expected distinct fluxes among {', '.join(fluxes)}, got {s.tasks}")
    if s.val_fraction + s.test_fraction >= 1.0:
        raise ConfigError(f"surrogate.val_fraction + test_fraction must be < 1 (members left to train on), "
                          f"got {s.val_fraction} + {s.test_fraction}")
    if s.window_days and s.warmup_days >= s.window_days:
        raise ConfigError(f"surrogate.warmup_days ({s.warmup_days}) must be shorter than window_days ({s.window_days})")
    w = cfg.calibration.task_weights
    for k, v in w.items():
        if k not in fluxes:
            raise ConfigError(f"calibration.task_weights: unknown flux {k!r}; allowed: {', '.join(fluxes)}")
        if not math.isfinite(v) or v < 0:
            raise ConfigError(f"calibration.task_weights.{k}: must be a finite number >= 0, got {v}")
    if not any(v > 0 for v in w.values()):
        raise ConfigError(f"calibration.task_weights: at least one weight must be > 0, got {w}")


def config_from_dict(raw: dict | None) -> Config:
    """Build and validate a :class:`Config` from a plain mapping (e.g. parsed YAML)."""
    return validate(_build(Config, raw or {}, ""))


def load_config(path: str | os.PathLike | None = None, **overrides: Any) -> Config:
    """Load YAML at ``path`` (defaults when None), apply top-level ``overrides``, validate."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: configuration file not found")
        try:
            raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: not a text file (expected YAML)") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({_yaml_reason(e)})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: top level must be a mapping")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_dict(raw)


def _yaml_reason(e: "yaml.YAMLError") -> str:
    """One line for a YAML error: what went wrong and where (line, column; 1-based)."""
    what = " ".join(str(getattr(e, "problem", None) or e).split())
    mark = getattr(e, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}" if mark is not None else what


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved configuration as YAML (atomically)."""
    from mdpl.io import atomic_write_text

    return atomic_write_text(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def ensemble_members(cfg: Config) -> int:
    """Ensemble members per site in the configured mode (``n_members_full`` in full mode)."""
    e = cfg.ensemble
    return int(getattr(e, "n_members_full", e.n_members) if cfg.mode == "full" else e.n_members)


def surrogate_config(cfg: Config) -> SurrogateConfig:
    """A copy of the surrogate section with the mode's epochs applied (``epochs_full`` in full mode)."""
    import copy

    s = copy.deepcopy(cfg.surrogate)
    if cfg.mode == "full" and hasattr(s, "epochs_full"):
        s.epochs = s.epochs_full
    return s
