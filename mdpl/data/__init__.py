"""Flux-tower data: ALMA netCDF reader, site catalogue, aggregation, synthetic forcing.

Public API::

    read_site(met_path, flux_path=None, site_path=None, *, stamp="auto") -> xr.Dataset
    find_sites(data_dir) -> dict[str, SiteFiles]
    load_sites(data_dir=None, sites=None) -> list[xr.Dataset]
    study_sites(cfg) -> (list[xr.Dataset], "real" | "synthetic")
    daily(ds, min_measured_fraction=0.75), monthly(ds, min_measured_fraction=0.75, min_day_fraction=0.5)
    load_catalogue(), site_info(code), pft_group(igbp), PFT_GROUPS
    generate_site(...), default_sites(years=2, seed=0, time_step_s=1800), site_twin(code, ...), Climate
    write_alma(ds, directory, *, dialect="plumber2", stamp=None), download_site(code, dest, ...)

Every Dataset follows :mod:`mdpl.data.schema`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mdpl.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from mdpl.config import Config

#: public name -> defining module; imported on first use so ``import mdpl.data`` (and ``mdpl --help``) stays light
_LAZY = {
    "PFT_GROUPS": "mdpl.data.catalogue",
    "load_catalogue": "mdpl.data.catalogue",
    "pft_group": "mdpl.data.catalogue",
    "site_info": "mdpl.data.catalogue",
    "SiteFiles": "mdpl.data.discover",
    "find_sites": "mdpl.data.discover",
    "read_site": "mdpl.data.reader",
    "read_met": "mdpl.data.reader",
    "daily": "mdpl.data.aggregate",
    "monthly": "mdpl.data.aggregate",
    "Climate": "mdpl.data.synthetic",
    "generate_site": "mdpl.data.synthetic",
    "default_sites": "mdpl.data.synthetic",
    "site_twin": "mdpl.data.synthetic",
    "write_alma": "mdpl.data.writer",
    "download_site": "mdpl.data.download",
}

__all__ = sorted([*_LAZY, "load_sites", "study_sites"])


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mdpl.data' has no attribute {name!r}")


def _resolve_dir(data_dir: str | os.PathLike | None) -> Path:
    from mdpl.config import DATA_DIR_ENV, default_data_dir

    d = Path(data_dir) if data_dir is not None else default_data_dir()
    if d is None:
        raise DataError(f"no data directory: pass one, set ${DATA_DIR_ENV}, or use the synthetic default")
    if not d.is_dir():
        via = f" (${DATA_DIR_ENV})" if data_dir is None and os.environ.get(DATA_DIR_ENV) else ""
        raise DataError(f"{d}: data directory{via} not found")
    return d


def load_sites(data_dir: str | os.PathLike | None = None, sites: list[str] | None = None, *,
               require_flux: bool = False) -> list["xr.Dataset"]:
    """Read every site (or the listed ``sites``, in that order) found under ``data_dir``.

    ``data_dir`` None means :func:`mdpl.config.default_data_dir`. Raises
    :class:`DataError` when nothing is found or a requested site is unknown or
    has no files there (or, with ``require_flux``, no Flux file: checked
    before any file is read).
    """
    from tqdm.auto import tqdm

    from mdpl.data.catalogue import site_info
    from mdpl.data.discover import find_sites
    from mdpl.data.reader import read_site

    d = _resolve_dir(data_dir)
    found = find_sites(d)
    if not found:
        raise DataError(f"{d}: no flux-tower files found (*_Met.nc/*_Flux.nc or *_met.nc/*_flux.nc)")
    if sites:
        for code in sites:
            if code not in found:
                site_info(code)  # unknown code -> DataError with close matches
                raise DataError(f"{d}: no files for site {code} (found: {', '.join(found)})")
        chosen = [found[c] for c in sites]
    else:
        chosen = list(found.values())
    if require_flux:
        for sf in chosen:
            if sf.flux is None:
                raise DataError(f"{sf.met}: no Flux file for site {sf.site} beside it (calibration needs the observed fluxes)")
    out = []
    for sf in tqdm(chosen, desc="reading sites", unit="site", disable=None if len(chosen) > 1 else True):
        out.append(read_site(sf.met, sf.flux, sf.site_file))
    return out


def study_sites(cfg: "Config") -> tuple[list["xr.Dataset"], str]:
    """The study's sites: real files when at hand ('real'), else synthetic twins ('synthetic').

    An explicitly configured ``cfg.data.data_dir`` must exist and hold
    files; ``$MDPL_DATA_DIR``, when set, must exist (a typo is an error, never
    a silent switch to synthetic data; an existing empty directory is how to
    ask for the synthetic default). Without either, ``../shared/data`` is used
    when it holds files, else the embedded synthetic default
    (``cfg.data.synthetic_sites``, ``synthetic_years``, seed ``cfg.seed``) so
    every stage runs on a fresh machine. Every real site needs its Flux file.
    """
    from mdpl.config import DATA_DIR_ENV, default_data_dir
    from mdpl.data.discover import find_sites
    from mdpl.data.synthetic import default_sites

    explicit = cfg.data.data_dir
    d = Path(explicit) if explicit else default_data_dir()
    if explicit and not d.is_dir():
        raise DataError(f"{explicit}: data directory (data.data_dir) not found")
    if not explicit and os.environ.get(DATA_DIR_ENV) and not d.is_dir():
        raise DataError(f"{d}: data directory (${DATA_DIR_ENV}) not found")
    if d is not None and d.is_dir() and find_sites(d):
        return load_sites(d, cfg.data.sites or None, require_flux=True), "real"
    if explicit:
        raise DataError(f"{explicit}: no flux-tower files found in data.data_dir")
    wanted = cfg.data.sites or cfg.data.synthetic_sites
    return default_sites(years=cfg.data.synthetic_years, seed=cfg.seed, sites=wanted), "synthetic"
