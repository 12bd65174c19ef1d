"""Download PLUMBER2 v1.0 Met/Flux files from the official THREDDS file server, resumably.

Files are ``{base}/Met/<SITE>_<Y0>-<Y1>_<SOURCE>_Met.nc`` and the same under
``Flux/``, where the years are the site's PLUMBER2 period (catalogue) and the
source is the collection it came from: FLUXNET2015, LaThuile or OzFlux. The
catalogue does not record the source, so the candidates are tried in turn (a
404 moves on to the next).

Each file streams into ``<name>.part`` and is renamed only when complete and
recognisably netCDF; an interrupted download resumes with an HTTP Range
request. Network failures are one-line :class:`DataError` messages.
"""

from __future__ import annotations

import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

from mdpl.data.catalogue import site_info
from mdpl.data.discover import SiteFiles
from mdpl.errors import DataError

BASE_URL = "https://thredds.nci.org.au/thredds/fileServer/ks32/CLEX_Data/PLUMBER2/v1-0/"
SOURCES = ("FLUXNET2015", "LaThuile", "OzFlux")
CHUNK = 1 << 20


class _NotFound(Exception):
    pass


def candidate_stems(code: str) -> list[str]:
    """File stems ``<SITE>_<Y0>-<Y1>_<SOURCE>`` to try for a catalogue site, likeliest first."""
    info = site_info(code)
    sources = list(SOURCES)
    if info["site"].startswith("AU-"):
        sources.remove("OzFlux")
        sources.insert(0, "OzFlux")
    return [f"{info['site']}_{info['start_year']}-{info['end_year']}_{s}" for s in sources]


def _total_from_headers(resp, offset: int) -> int | None:
    cr = resp.headers.get("Content-Range")
    if cr:
        m = re.search(r"/(\d+)\s*$", cr)
        if m:
            return int(m.group(1))
    cl = resp.headers.get("Content-Length")
    return int(cl) + offset if cl is not None else None


def fetch(url: str, path: str | Path, *, timeout: float = 60.0, progress: bool = True) -> Path:
    """Download ``url`` to ``path`` via ``path.part`` (resuming it if present); returns ``path``."""
    from tqdm.auto import tqdm

    path = Path(path)
    if path.exists():
        return path
    part = path.with_name(path.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "mdpl-download"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise _NotFound(url) from None
        if e.code == 416 and offset:  # nothing left to fetch: the part is complete
            resp = None
        else:
            raise DataError(f"{url}: HTTP error {e.code} ({e.reason})") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        host = urllib.request.urlparse(url).netloc
        raise DataError(f"cannot reach {host} (offline?): {reason}") from None
    if resp is not None:
        with resp:
            status = getattr(resp, "status", 200)
            if offset and status != 206:  # server ignored the Range request: start over
                offset = 0
            total = _total_from_headers(resp, offset)
            mode = "ab" if offset else "wb"
            try:
                with part.open(mode) as fh, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                                 desc=path.name, disable=None if progress else True) as bar:
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        fh.write(chunk)
                        bar.update(len(chunk))
            except (socket.timeout, ConnectionError, OSError) as e:
                raise DataError(f"{url}: download interrupted ({e}); run again to resume from {part.name}") from None
        size = part.stat().st_size
        if total is not None and size != total:
            raise DataError(f"{url}: download incomplete ({size} of {total} bytes); run again to resume")
    with part.open("rb") as fh:
        head = fh.read(4)
    if not (head.startswith(b"CDF") or head.startswith(b"\x89HDF")):
        part.unlink()
        raise DataError(f"{url}: the server did not return a netCDF file")
    part.replace(path)
    return path


def download_site(
    code: str, dest: str | Path, *, base_url: str = BASE_URL, timeout: float = 60.0, progress: bool = True
) -> SiteFiles:
    """Fetch one site's Met and Flux files into ``dest``; returns their paths."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = base_url.rstrip("/")
    tried = []
    for stem in candidate_stems(code):
        met_url = f"{base}/Met/{stem}_Met.nc"
        tried.append(met_url)
        try:
            met = fetch(met_url, dest / f"{stem}_Met.nc", timeout=timeout, progress=progress)
        except _NotFound:
            continue
        flux_url = f"{base}/Flux/{stem}_Flux.nc"
        try:
            flux = fetch(flux_url, dest / f"{stem}_Flux.nc", timeout=timeout, progress=progress)
        except _NotFound:
            raise DataError(f"{flux_url}: not found on the server (the Met file exists)") from None
        return SiteFiles(site_info(code)["site"], met, flux, None, "plumber2")
    raise DataError(f"site {code}: no PLUMBER2 Met file on the server (tried {', '.join(u.rsplit('/', 1)[1] for u in tried)})")
