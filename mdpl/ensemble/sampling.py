"""Space-filling parameter designs inside a :class:`mdpl.ils.ParameterSpace`.

Designs are drawn in the unit cube with :mod:`scipy.stats.qmc` (scrambled
Sobol or Latin hypercube, seeded) and mapped to physical units by the space
itself, so any non-linear scaling a parameter has (e.g. log) is honoured.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.stats import qmc

SAMPLERS = ("sobol", "lhs")


def unit_design(n: int, d: int, method: str = "sobol", seed: int = 0) -> np.ndarray:
    """``n`` points in ``[0, 1)^d`` (float64), deterministic from ``seed``.

    Sobol is scrambled; for ``n`` not a power of two the first ``n`` points of
    the next power of two are taken (balance is lost only marginally).
    """
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    if method == "sobol":
        m = int(np.ceil(np.log2(max(n, 2))))
        pts = qmc.Sobol(d=d, scramble=True, seed=np.random.default_rng(seed)).random_base2(m)[:n]
    elif method == "lhs":
        pts = qmc.LatinHypercube(d=d, seed=np.random.default_rng(seed)).random(n)
    else:
        raise ValueError(f"unknown sampler {method!r}; expected one of {', '.join(SAMPLERS)}")
    return np.clip(pts, 0.0, np.nextafter(1.0, 0.0))


def space_from_unit(space, u: np.ndarray) -> np.ndarray:
    """Unit-cube points (n, P) -> physical parameters through ``space.from_unit`` (numpy float64)."""
    out = space.from_unit(np.asarray(u, dtype=np.float64))
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def space_to_unit(space, theta: np.ndarray) -> np.ndarray:
    """Physical parameters (n, P) -> unit cube through ``space.to_unit`` (numpy float64)."""
    out = space.to_unit(np.asarray(theta, dtype=np.float64))
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def sample_parameters(space, n: int, method: str = "sobol", seed: int = 0) -> np.ndarray:
    """``n`` physical parameter sets (n, P) filling ``space``'s bounds (Sobol or LHS)."""
    u = unit_design(int(n), int(space.n), method, seed)
    theta = space_from_unit(space, u)
    lo, hi = np.asarray(space.lower, float), np.asarray(space.upper, float)
    return np.clip(theta, lo, hi)


def site_seed(seed: int, site: str) -> int:
    """A per-site seed: stable under adding or reordering other sites."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(site.encode())]).generate_state(1)[0])
