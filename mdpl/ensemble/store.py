"""The on-disk perturbed-parameter ensemble: one directory a user can open.

Layout of ``store_dir``::

    manifest.json               provenance and the plan (sites, members, batches, parameters)
    features/<site>.nc          the daily inputs the runs came from (SiteFeatures)
    runs/<site>__bNNNN.nc       one batch of members: params (member, param), Qle/Qh/NEE (member, day)

Every file is written to a hidden temporary name in the same directory and
moved into place by :func:`mdpl.io.atomic_write` (atomic on POSIX), so a file under
its final name is always complete; temporaries left by a killed run are never
read and are removed when the run resumes. :meth:`EnsembleStore.open` refuses
an ensemble with missing batches unless asked for the finished part only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from mdpl.data.features import SiteFeatures
from mdpl.errors import DataError
from mdpl.io import atomic_write_json, safe_name

MANIFEST = "manifest.json"
STORE_FORMAT = 1
#: fluxes every ensemble keeps (daily means; W m-2, W m-2, umol m-2 s-1)
ENSEMBLE_FLUXES: tuple[str, ...] = ("Qle", "Qh", "NEE")
FLUX_UNITS = {"Qle": "W m-2", "Qh": "W m-2", "NEE": "umol m-2 s-1"}


def write_json(path: Path, obj) -> None:
    """``obj`` (numpy scalars and arrays included) as indented JSON, written atomically."""
    atomic_write_json(path, obj, default=_json_default)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def batch_file(store_dir: Path, site: str, batch: int) -> Path:
    return Path(store_dir) / "runs" / f"{safe_name(site)}__b{batch:04d}.nc"


def features_file(store_dir: Path, site: str) -> Path:
    return Path(store_dir) / "features" / f"{safe_name(site)}.nc"


def batch_glob(store_dir: Path, site: str) -> list[Path]:
    """Every batch file of ``site`` on disk."""
    return sorted((Path(store_dir) / "runs").glob(f"{site}__b[0-9][0-9][0-9][0-9].nc"))


def _load(path: Path) -> xr.Dataset:
    """A store file read into memory; a truncated or otherwise damaged one is a DataError naming it."""
    try:
        with xr.open_dataset(path) as ds:
            return ds.load()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise DataError(f"{path}: damaged ensemble file ({type(e).__name__}: {e}); delete it and rerun to "
                        "recompute it") from None


def remove_damaged(store_dir) -> list[str]:
    """Delete the run and feature files of ``store_dir`` that cannot be read back; returns their names.

    A later run with the same settings then recomputes exactly those.
    """
    store_dir = Path(store_dir)
    gone = []
    for p in sorted([*store_dir.glob("runs/*.nc"), *store_dir.glob("features/*.nc")]):
        try:
            _load(p)
        except DataError:
            p.unlink(missing_ok=True)
            gone.append(str(p.relative_to(store_dir)))
    return gone


def remove_temporaries(store_dir: Path) -> int:
    """Delete half-written temporaries a killed run left behind; returns how many."""
    n = 0
    for p in Path(store_dir).rglob(".*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def read_manifest(store_dir) -> dict:
    path = Path(store_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"{store_dir}: not an ensemble store (no {MANIFEST})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: unreadable manifest ({e})") from None


def space_from_manifest(entry: dict):
    """Rebuild the :class:`mdpl.ils.ParameterSpace` recorded in a manifest's ``parameters`` entry."""
    from mdpl.ils.parameters import ParameterSpace, ParameterSpec

    specs = tuple(
        ParameterSpec(p["name"], p.get("units", ""), float(p["lower"]), float(p["upper"]), bool(p.get("log", False)),
                      p.get("description", ""))
        for p in entry
    )
    return ParameterSpace(specs)


def space_to_manifest(space) -> list[dict]:
    logs = getattr(space, "log", np.zeros(space.n, bool))
    units = getattr(space, "units", [""] * space.n)
    desc = getattr(space, "descriptions", [""] * space.n)
    return [
        dict(name=n, units=u, lower=float(lo), upper=float(hi), log=bool(lg), description=d)
        for n, u, lo, hi, lg, d in zip(space.names, units, space.lower, space.upper, logs, desc)
    ]


class EnsembleStore:
    """A finished (or, on request, partial) ensemble read back from ``store_dir``.

    - ``sites``: site codes, in manifest order; ``n_days[i]`` their day counts;
    - ``params``: (site, member, P) physical parameters (NaN for members not run);
    - ``daily[flux]``: (site, member, day) daily land-model fluxes, NaN-padded
      past each site's last day (Qle, Qh in W m-2; NEE in umol m-2 s-1);
    - ``features[site]``: the :class:`SiteFeatures` the runs used;
    - ``space``: the parameter space the members were drawn from;
    - ``manifest``: provenance (model, versions, seed, sampler, dates).
    """

    def __init__(self, store_dir, manifest, params, daily, features, space, done):
        self.path = Path(store_dir)
        self.manifest = manifest
        self.sites: list[str] = [s["site"] for s in manifest["sites"]]
        self.n_days = np.array([s["n_days"] for s in manifest["sites"]], dtype=int)
        self.params = params
        self.daily = daily
        self.features = features
        self.space = space
        self.done = done  # (site, member) bool: member was run

    @property
    def n_members(self) -> int:
        return int(self.manifest["n_members"])

    @property
    def fluxes(self) -> tuple[str, ...]:
        return tuple(self.daily)

    def __repr__(self) -> str:
        return f"EnsembleStore({self.path}, sites={self.sites}, members={self.n_members})"

    @classmethod
    def open(cls, store_dir, *, allow_incomplete: bool = False) -> EnsembleStore:
        """Read ``store_dir``; a missing batch is a :class:`DataError` unless ``allow_incomplete``."""
        store_dir = Path(store_dir)
        man = read_manifest(store_dir)
        if man.get("format") != STORE_FORMAT:
            raise DataError(f"{store_dir}: store format {man.get('format')!r}, expected {STORE_FORMAT}")
        sites = man["sites"]
        n_sites, n_mem = len(sites), int(man["n_members"])
        n_par = len(man["parameters"])
        max_days = max(s["n_days"] for s in sites)
        params = np.full((n_sites, n_mem, n_par), np.nan)
        fluxes = list(man.get("fluxes", ENSEMBLE_FLUXES))
        daily = {f: np.full((n_sites, n_mem, max_days), np.nan, dtype=np.float32) for f in fluxes}
        done = np.zeros((n_sites, n_mem), bool)
        missing = []
        features = {}
        for i, s in enumerate(sites):
            ff = features_file(store_dir, s["site"])
            if not ff.is_file():
                missing.append(str(ff.relative_to(store_dir)))
            else:
                features[s["site"]] = SiteFeatures.from_dataset(_load(ff))
            for b, (m0, m1) in enumerate(man["batches"]):
                path = batch_file(store_dir, s["site"], b)
                if not path.is_file():
                    missing.append(str(path.relative_to(store_dir)))
                    continue
                ds = _load(path)
                members = ds["member"].values
                if members[0] != m0 or members[-1] != m1 - 1 or ds.sizes["day"] != s["n_days"]:
                    raise DataError(f"{path}: holds members {members[0]}..{members[-1]} over "
                                    f"{ds.sizes['day']} days; manifest expects {m0}..{m1 - 1} over {s['n_days']}")
                params[i, m0:m1] = ds["params"].values
                for f in fluxes:
                    daily[f][i, m0:m1, : s["n_days"]] = ds[f].values
                done[i, m0:m1] = True
        if missing and not allow_incomplete:
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            raise DataError(
                f"{store_dir}: ensemble incomplete, missing {', '.join(missing[:5])}{more}; "
                "run the ensemble again with the same settings to resume"
            )
        return cls(store_dir, man, params, daily, features, space_from_manifest(man["parameters"]), done)

    def concat(self, other: EnsembleStore) -> EnsembleStore:
        """A new in-memory store with ``other``'s members appended (same sites, days, fluxes and space)."""
        if other.sites != self.sites or list(other.n_days) != list(self.n_days) or set(other.daily) != set(self.daily):
            raise DataError(f"cannot join ensembles {self.path} and {other.path}: sites, days or fluxes differ")
        man = dict(self.manifest, n_members=self.n_members + other.n_members,
                   joined=[str(self.path), str(other.path)])
        return EnsembleStore(self.path, man, np.concatenate([self.params, other.params], axis=1),
                             {f: np.concatenate([self.daily[f], other.daily[f]], axis=1) for f in self.daily},
                             self.features, self.space, np.concatenate([self.done, other.done], axis=1))

    def finite(self, fluxes=None) -> np.ndarray:
        """(site, member) True where the member ran and every day of ``fluxes`` (default all) is finite.

        A land model can fail for extreme parameter sets (NaN); such members
        are kept in the store, as produced, and left out by the surrogate
        training and the fidelity report.
        """
        ok = self.done.copy()
        for f in fluxes or self.daily:
            for i, n in enumerate(self.n_days):
                ok[i] &= np.isfinite(self.daily[f][i, :, :n]).all(axis=1)
        return ok

    def site_index(self, site: str) -> int:
        try:
            return self.sites.index(site)
        except ValueError:
            raise DataError(f"site {site!r} not in ensemble {self.path} (has {', '.join(self.sites)})") from None

    def member_series(self, site: str, flux: str) -> np.ndarray:
        """(member, day) daily series of one flux at one site (no padding)."""
        i = self.site_index(site)
        return self.daily[flux][i, :, : self.n_days[i]]
