"""Find each site's files in a data directory (PLUMBER2 and PALS naming)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mdpl.data.catalogue import PALS_NAMES

_PLUMBER2 = re.compile(r"^(?P<code>[A-Z]{2}-[A-Za-z0-9]{3})_.*_(?P<kind>Met|Flux|site)\.nc$")
_PALS = re.compile(r"^(?P<stem>.+?)(?:\.\d+(?:\.\d+)*)?_(?P<kind>met|flux)\.nc$")


@dataclass(frozen=True)
class SiteFiles:
    """The files of one site: Met (required), Flux and site (optional), and the naming dialect."""

    site: str
    met: Path
    flux: Path | None = None
    site_file: Path | None = None
    dialect: str = "plumber2"


def _classify(path: Path) -> tuple[str, str, str] | None:
    """(site code, kind in met/flux/site, dialect) from a file name, or None."""
    m = _PLUMBER2.match(path.name)
    if m:
        return m["code"], m["kind"].lower(), "plumber2"
    m = _PALS.match(path.name)
    if m:
        stem = m["stem"]
        return PALS_NAMES.get(stem, stem), m["kind"], "pals"
    return None


def find_sites(data_dir: str | Path) -> dict[str, SiteFiles]:
    """Site code -> :class:`SiteFiles` for every site with a Met file under ``data_dir`` (recursive).

    PLUMBER2 files are preferred over PALS files of the same site. PALS stems
    map to codes through :data:`mdpl.data.catalogue.PALS_NAMES`
    (``KrugerFluxnet.1.4`` -> ``ZA-Kru``).
    """
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for p in sorted(Path(data_dir).rglob("*.nc")):
        if not p.is_file():
            continue
        c = _classify(p)
        if c is None:
            continue
        code, kind, dialect = c
        found.setdefault((code, dialect), {}).setdefault(kind, p)
    out: dict[str, SiteFiles] = {}
    for dialect in ("plumber2", "pals"):
        for (code, d), files in sorted(found.items()):
            if d != dialect or code in out or "met" not in files:
                continue
            out[code] = SiteFiles(code, files["met"], files.get("flux"), files.get("site"), dialect)
    return dict(sorted(out.items()))
