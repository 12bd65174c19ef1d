"""Helpers shared by the data tests: well-formed synthetic ALMA files and copies to corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from mdpl.data.synthetic import site_twin
from mdpl.data.writer import write_alma

REAL_PAIRS = {
    "plumber2": ("plumber2/DK-Fou_2005-2005_FLUXNET2015_Met.nc", "plumber2/DK-Fou_2005-2005_FLUXNET2015_Flux.nc"),
    "pals": ("pals/KrugerFluxnet.1.4_met.nc", "pals/KrugerFluxnet.1.4_flux.nc"),
}


def synthetic_with_fluxes(code: str = "ZA-Kru", years: float = 0.1, seed: int = 0) -> xr.Dataset:
    """A synthetic site with simple plausible fluxes and a known measured pattern (2 of 3 steps)."""
    ds = site_twin(code, years=years, seed=seed)
    n = ds.sizes["time"]
    rnet = 0.8 * ds["SWdown"].values - 60.0
    ds["Qle"][:] = 0.5 * rnet
    ds["Qh"][:] = 0.3 * rnet
    ds["NEE"][:] = 2.0 - 0.02 * ds["SWdown"].values
    for f in ("Qle", "Qh", "NEE"):
        ds[f + "_measured"][:] = np.arange(n) % 3 != 0
    return ds


def make_pair(kind: str, tmp: Path, real_dir: Path | None = None) -> tuple[Path, Path]:
    """(met, flux) copies in ``tmp``: 'real-plumber2'/'real-pals' copy shared files, 'synthetic-*' write new ones."""
    source, dialect = kind.split("-")
    tmp.mkdir(parents=True, exist_ok=True)
    if source == "real":
        met_rel, flux_rel = REAL_PAIRS[dialect]
        met, flux = tmp / Path(met_rel).name, tmp / Path(flux_rel).name
        shutil.copy(real_dir / met_rel, met)
        shutil.copy(real_dir / flux_rel, flux)
        met.chmod(0o644)
        flux.chmod(0o644)
        return met, flux
    src = _synthetic_source(dialect)
    met, flux = tmp / src[0].name, tmp / src[1].name
    shutil.copy(src[0], met)
    shutil.copy(src[1], flux)
    return met, flux


_CACHE: dict[str, tuple[Path, Path]] = {}


def _synthetic_source(dialect: str) -> tuple[Path, Path]:
    """Synthetic files written once per test session (then copied)."""
    if dialect not in _CACHE:
        import tempfile

        d = Path(tempfile.mkdtemp(prefix=f"mdpl-synth-{dialect}-"))
        sf = write_alma(synthetic_with_fluxes(), d, dialect=dialect)
        _CACHE[dialect] = (sf.met, sf.flux)
    return _CACHE[dialect]


def rewrite(path: Path, fn) -> Path:
    """Apply ``fn`` to the raw (undecoded-time) contents of ``path`` and write them back in place."""
    with xr.open_dataset(path, decode_times=False) as raw:
        raw = raw.load()
    new = fn(raw)
    new.encoding = {}  # no unlimited time dimension: much faster to write and read
    for var in new.variables.values():
        var.encoding = {}
    tmp = path.with_suffix(".tmp.nc")
    new.to_netcdf(tmp)
    tmp.replace(path)
    return path


_REAL: dict = {}


def real_sites(real_dir: Path) -> dict[str, xr.Dataset]:
    """All real sites read once per test process (do not modify the returned Datasets)."""
    key = str(real_dir)
    if key not in _REAL:
        from mdpl.data import load_sites

        _REAL[key] = {ds.attrs["site"]: ds for ds in load_sites(real_dir)}
    return _REAL[key]
