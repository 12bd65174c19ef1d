"""PLUMBER's empirical benchmarks ``1lin`` and ``3km27``, trained out of sample.

As published (Best et al. 2015, JHM 16:1425; Haughton et al. 2016, JHM 17:1705;
PLUMBER2, Abramowitz et al. 2024):

- ``1lin``: an ordinary least-squares regression of each flux on SWdown;
- ``3km27``: k-means with 27 clusters on (SWdown, Tair, RH), then a linear
  regression on those three inputs within each cluster.

Both are fitted at the native (half-hourly) step on steps where the flux was
measured, on every site *except* the one predicted (leave-one-site-out), so
they say how much of a flux the meteorology alone explains instantaneously;
a land model should beat them. Inputs are standardised before clustering
(k-means is scale dependent); the regression is exact either way. The
clustering is ``scipy.cluster.vq.kmeans2`` (k-means++ start, fixed seed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from mdpl.data.schema import measured_name
from mdpl.errors import DataError

#: benchmark name -> its input variables (RH in %, Tair in K, SWdown in W m-2)
EMPIRICAL_INPUTS: dict[str, tuple[str, ...]] = {"1lin": ("SWdown",), "3km27": ("SWdown", "Tair", "RH")}


def _design(x: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones(len(x)), x])


class LinearBenchmark:
    """Ordinary least squares ``y = a + X b`` (``1lin`` when X is SWdown alone)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "LinearBenchmark":
        x = np.asarray(x, float).reshape(len(y), -1)
        self.coef_, *_ = np.linalg.lstsq(_design(x), np.asarray(y, float), rcond=None)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float).reshape(len(x), -1)
        return _design(x) @ self.coef_


class ClusterLinearBenchmark:
    """k-means on standardised inputs, then one least-squares regression per cluster (``3km27``).

    A cluster with too few training points to fit ``1 + n_inputs`` coefficients
    robustly (fewer than ``min_points``) uses the regression over all points.
    """

    def __init__(self, n_clusters: int = 27, seed: int = 0, min_points: int = 10, iterations: int = 30):
        self.n_clusters = n_clusters
        self.seed = seed
        self.min_points = min_points
        self.iterations = iterations

    def _scale(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, float).reshape(len(x), -1) - self.mean_) / self.scale_

    def fit(self, x: np.ndarray, y: np.ndarray) -> "ClusterLinearBenchmark":
        from scipy.cluster.vq import kmeans2

        x = np.asarray(x, float).reshape(len(y), -1)
        y = np.asarray(y, float)
        if len(x) < self.n_clusters:
            raise DataError(f"3km27: {len(x)} training steps are fewer than {self.n_clusters} clusters")
        self.mean_ = x.mean(axis=0)
        self.scale_ = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        z = self._scale(x)
        self.centroids_, labels = kmeans2(
            z, self.n_clusters, iter=self.iterations, minit="++", seed=np.random.default_rng(self.seed)
        )
        overall = np.linalg.lstsq(_design(z), y, rcond=None)[0]
        self.coefs_ = np.repeat(overall[None], self.n_clusters, axis=0)
        for k in range(self.n_clusters):
            sel = labels == k
            if sel.sum() >= max(self.min_points, z.shape[1] + 1):
                self.coefs_[k] = np.linalg.lstsq(_design(z[sel]), y[sel], rcond=None)[0]
        return self

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Index of the nearest centroid for each row of ``x``."""
        from scipy.cluster.vq import vq

        return vq(self._scale(x), self.centroids_)[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = self._scale(x)
        lab = self.labels(x)
        d = _design(z)
        return np.einsum("ij,ij...->i...", d, self.coefs_[lab])


def make_benchmark(name: str, seed: int = 0):
    """A fresh, unfitted ``1lin`` or ``3km27`` model."""
    if name == "1lin":
        return LinearBenchmark()
    if name == "3km27":
        return ClusterLinearBenchmark(27, seed=seed)
    raise DataError(f"unknown empirical benchmark {name!r}; choose from {', '.join(EMPIRICAL_INPUTS)}")


def empirical_inputs(ds: xr.Dataset, names: Sequence[str] = ("SWdown", "Tair", "RH")) -> np.ndarray:
    """Inputs of the empirical benchmarks, ``(time, len(names))``: SWdown W m-2, Tair K, RH %.

    RH is computed from Qair, Tair and Psurf (the canonical Dataset stores specific humidity).
    """
    from mdpl.data.fill import rh_from_qair

    cols = []
    for n in names:
        if n == "RH":
            cols.append(100.0 * rh_from_qair(ds["Qair"].values, ds["Tair"].values, ds["Psurf"].values))
        elif n in ds:
            cols.append(np.asarray(ds[n].values, float))
        else:
            raise DataError(f"site {ds.attrs.get('site', '?')}: forcing lacks {n} needed by the empirical benchmarks")
    return np.column_stack(cols)


def _training_rows(ds: xr.Dataset, flux: str, inputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    x = empirical_inputs(ds, inputs)
    if flux not in ds:
        return x[:0], np.zeros(0)
    y = np.asarray(ds[flux].values, float)
    mname = measured_name(flux)
    ok = np.isfinite(y) & np.all(np.isfinite(x), axis=1)
    if mname in ds:
        ok &= np.asarray(ds[mname].values, bool)
    return x[ok], y[ok]


def fit_benchmark(name: str, datasets: Sequence[xr.Dataset], flux: str, seed: int = 0):
    """Fit ``name`` for ``flux`` on the measured steps of all ``datasets`` pooled."""
    if name not in EMPIRICAL_INPUTS:
        make_benchmark(name)  # raises DataError naming the choices
    inputs = EMPIRICAL_INPUTS[name]
    xs, ys = zip(*(_training_rows(ds, flux, inputs) for ds in datasets)) if datasets else ((), ())
    x = np.concatenate(xs) if xs else np.zeros((0, len(inputs)))
    y = np.concatenate(ys) if ys else np.zeros(0)
    if len(y) < 2 * (len(inputs) + 1):
        sites = ", ".join(str(ds.attrs.get("site", "?")) for ds in datasets) or "none"
        raise DataError(f"{name}: too few measured {flux} steps to train on (sites: {sites})")
    return make_benchmark(name, seed).fit(x, y)


@dataclass
class EmpiricalPrediction:
    """One benchmark's out-of-sample prediction for one site at its native step."""

    site: str
    model: str
    trained_on: tuple[str, ...]
    fluxes: dict[str, np.ndarray] = field(default_factory=dict)  # flux -> (time,) W m-2


def predict_out_of_sample(
    name: str,
    datasets: Mapping[str, xr.Dataset] | Sequence[xr.Dataset],
    fluxes: Sequence[str] = ("Qle", "Qh"),
    seed: int = 0,
) -> dict[str, EmpiricalPrediction]:
    """For each site, fit ``name`` on all *other* sites and predict this one (leave one site out)."""
    if not isinstance(datasets, Mapping):
        datasets = {str(ds.attrs.get("site", i)): ds for i, ds in enumerate(datasets)}
    if len(datasets) < 2:
        raise DataError(f"{name}: out-of-sample training needs at least two sites, got {list(datasets)}")
    if name not in EMPIRICAL_INPUTS:
        make_benchmark(name)
    inputs = EMPIRICAL_INPUTS[name]
    out: dict[str, EmpiricalPrediction] = {}
    for site, ds in datasets.items():
        others = [d for s, d in datasets.items() if s != site]
        pred = EmpiricalPrediction(site, name, tuple(s for s in datasets if s != site))
        x = empirical_inputs(ds, inputs)
        ok = np.all(np.isfinite(x), axis=1)
        for flux in fluxes:
            model = fit_benchmark(name, others, flux, seed)
            y = np.full(len(x), np.nan)
            y[ok] = model.predict(x[ok])
            pred.fluxes[flux] = y
        out[site] = pred
    return out
