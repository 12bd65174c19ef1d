"""Find each site's files in a data directory (PLUMBER2 and PALS naming)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mdpl.data.catalogue import PALS_NAMES
from mdpl.errors import DataError

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


def _partner_name(path: Path, kind: str) -> str | None:
    """The file name of ``path``'s partner of ``kind`` (met/flux/site) under the same naming, or None."""
    m = _PLUMBER2.match(path.name)
    if m:
        return path.name[: m.start("kind")] + {"met": "Met", "flux": "Flux", "site": "site"}[kind] + ".nc"
    m = _PALS.match(path.name)
    if m and kind in ("met", "flux"):
        return path.name[: m.start("kind")] + kind + ".nc"
    return None


def _pick(code: str, kind: str, candidates: list[Path], anchor: Path | None) -> Path | None:
    """The one file of ``kind`` for site ``code``: the anchor's name-partner when present, else the only one.

    Two or more candidates with no name-partner are a :class:`DataError`
    naming them: the reader never picks between copies of a site silently.
    """
    if not candidates:
        return None
    if anchor is not None:
        want = _partner_name(anchor, kind)
        same = [c for c in candidates if c.name == want and c.parent == anchor.parent]
        if same:
            return same[0]
    if len(candidates) == 1:
        return candidates[0]
    raise DataError(f"site {code}: {len(candidates)} {kind} files, cannot tell which to read: "
                    f"{', '.join(str(c) for c in candidates)}; remove or move the copies you do not mean")


def _group(paths) -> dict[tuple[str, str], dict[str, list[Path]]]:
    found: dict[tuple[str, str], dict[str, list[Path]]] = {}
    for p in sorted(paths):
        if not p.is_file():
            continue
        c = _classify(p)
        if c is None:
            continue
        code, kind, dialect = c
        found.setdefault((code, dialect), {}).setdefault(kind, []).append(p)
    return found


def _site_files(code: str, dialect: str, files: dict[str, list[Path]], met: Path | None = None) -> SiteFiles:
    met = met or _pick(code, "met", files.get("met", []), None)
    return SiteFiles(code, met, _pick(code, "flux", files.get("flux", []), met),
                     _pick(code, "site", files.get("site", []), met), dialect)


def find_sites(data_dir: str | Path) -> dict[str, SiteFiles]:
    """Site code -> :class:`SiteFiles` for every site with a Met file under ``data_dir`` (recursive).

    PLUMBER2 files are preferred over PALS files of the same site. PALS stems
    map to codes through :data:`mdpl.data.catalogue.PALS_NAMES`
    (``KrugerFluxnet.1.4`` -> ``ZA-Kru``). Two Met (or Flux) files of one site
    in one dialect are a :class:`DataError` naming both (a stale copy in a
    subfolder is never read instead of the file meant).
    """
    found = _group(Path(data_dir).rglob("*.nc"))
    out: dict[str, SiteFiles] = {}
    for dialect in ("plumber2", "pals"):
        for (code, d), files in sorted(found.items()):
            if d != dialect or code in out or "met" not in files:
                continue
            out[code] = _site_files(code, dialect, files)
    return dict(sorted(out.items()))


def site_files_of(path: str | Path) -> SiteFiles:
    """The files of the site that ``path`` (one of its Met, Flux or site files) belongs to.

    ``path`` itself is read for its kind; its partners are looked for beside
    it only (same directory, not below it), by name first.
    """
    path = Path(path)
    c = _classify(path)
    if c is None:
        return SiteFiles(path.stem, path)
    code, kind, dialect = c
    files = _group(path.parent.glob("*.nc")).get((code, dialect), {})
    files[kind] = [path]
    met = path if kind == "met" else _pick(code, "met", files.get("met", []), path)
    if met is None:
        raise DataError(f"{path}: no Met file for site {code} beside it")
    sf = _site_files(code, dialect, files, met)
    return SiteFiles(code, met, path if kind == "flux" else sf.flux, path if kind == "site" else sf.site_file, dialect)
