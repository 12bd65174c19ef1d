"""The catalogue of the 170 PLUMBER2 sites and the IGBP -> PFT-group map.

The table ships as package data (``resources/plumber2_sites.csv``, written by
``scripts/make_catalogue.py`` from public facts). Columns: site, site_name,
country, igbp, latitude, longitude, elevation_m, period, years, start_year,
end_year, pft_group. A second table, ``resources/site_water.csv``, holds
documented hydrology of individual sites (wetland, paddy flooding months),
each row with its source.
"""

from __future__ import annotations

import difflib
from functools import lru_cache
from importlib import resources

import pandas as pd

from mdpl.errors import DataError

#: IGBP class -> PFT group used throughout (classes not listed are their own group)
PFT_GROUPS: dict[str, str] = {
    "ENF": "evergreen_forest",
    "EBF": "evergreen_forest",
    "WSA": "woodland",
    "SAV": "woodland",
    "OSH": "woodland",
    "CSH": "woodland",
    "CRO": "cultivation",
    "GRA": "grassland",
}

#: PALS Fluxnet 1.4 dataset names of the PLUMBER (Best et al. 2015) sites -> PLUMBER2 site codes
PALS_NAMES: dict[str, str] = {
    "Amplero": "IT-Amp", "AmpleroFluxnet": "IT-Amp",
    "Blodgett": "US-Blo", "BlodgettFluxnet": "US-Blo",
    "Bugac": "HU-Bug", "BugacFluxnet": "HU-Bug",
    "ElSaler": "ES-ES1", "ElSalerFluxnet": "ES-ES1",
    "ElSaler2": "ES-ES2", "ElSaler2Fluxnet": "ES-ES2",
    "Espirra": "PT-Esp", "EspirraFluxnet": "PT-Esp",
    "FortPeck": "US-FPe", "FortPeckFluxnet": "US-FPe",
    "Harvard": "US-Ha1", "HarvardFluxnet": "US-Ha1",
    "Hesse": "FR-Hes", "HesseFluxnet": "FR-Hes",
    "Howard": "AU-How", "HowardFluxnet": "AU-How",
    "Howlandm": "US-Ho1", "HowlandmFluxnet": "US-Ho1",
    "Hyytiala": "FI-Hyy", "HyytialaFluxnet": "FI-Hyy",
    "Kruger": "ZA-Kru", "KrugerFluxnet": "ZA-Kru",
    "Loobos": "NL-Loo", "LoobosFluxnet": "NL-Loo",
    "Merbleue": "CA-Mer", "MerbleueFluxnet": "CA-Mer",
    "Mopane": "BW-Ma1", "MopaneFluxnet": "BW-Ma1",
    "Palang": "ID-Pag", "PalangFluxnet": "ID-Pag",
    "Sylvania": "US-Syv", "SylvaniaFluxnet": "US-Syv",
    "Tumba": "AU-Tum", "TumbaFluxnet": "AU-Tum",
    "UniMich": "US-UMB", "UniMichFluxnet": "US-UMB",
}


def pft_group(igbp: str) -> str:
    """PFT group of an IGBP class: evergreen_forest, woodland, cultivation, grassland, else the class itself."""
    code = str(igbp).strip().upper()
    return PFT_GROUPS.get(code, code)


@lru_cache(maxsize=1)
def _catalogue() -> pd.DataFrame:
    with resources.files("mdpl.data.resources").joinpath("plumber2_sites.csv").open() as fh:
        return pd.read_csv(fh)


@lru_cache(maxsize=1)
def _site_water_table() -> pd.DataFrame:
    with resources.files("mdpl.data.resources").joinpath("site_water.csv").open() as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


def site_water_facts(code: str) -> dict[str, str]:
    """Documented hydrology of a site (``resources/site_water.csv``, one row per site with its source):
    the attributes ``wetland`` and ``paddy_flood_months`` that :mod:`mdpl.ils.site_water` reads; empty
    for a site the table does not list (its IGBP class decides)."""
    df = _site_water_table()
    rows = df[df["site"] == code]
    if rows.empty:
        return {}
    row = rows.iloc[0]
    return {k: str(row[k]) for k in ("wetland", "paddy_flood_months") if str(row[k]).strip()}


def load_catalogue() -> pd.DataFrame:
    """All PLUMBER2 sites as a DataFrame (a copy; one row per site, sorted by code)."""
    return _catalogue().copy()


def site_codes() -> list[str]:
    return _catalogue()["site"].tolist()


def site_info(code: str) -> dict:
    """Catalogue row of ``code`` as a dict; :class:`DataError` (with close matches) when unknown."""
    df = _catalogue()
    rows = df[df["site"] == code]
    if rows.empty:
        rows = df[df["site"].str.upper() == str(code).upper()]
    if rows.empty:
        close = difflib.get_close_matches(str(code), df["site"].tolist(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"unknown site code {code!r} (not among the {len(df)} PLUMBER2 sites){hint}")
    row = rows.iloc[0].to_dict()
    for k in ("start_year", "end_year", "years"):
        row[k] = int(row[k])
    for k in ("latitude", "longitude", "elevation_m"):
        row[k] = float(row[k])
    return row
