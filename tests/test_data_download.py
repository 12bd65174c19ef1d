"""``mdpl data download`` against a local HTTP server (127.0.0.1), never the internet."""

from __future__ import annotations

import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest

from mdpl import DataError
from mdpl.cli import main
from mdpl.data.download import candidate_stems, download_site, fetch


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP Range support (``bytes=N-``); counts requests per path."""

    hits: dict = {}
    ignore_range = False

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):  # noqa: N802
        type(self).hits[self.path] = type(self).hits.get(self.path, 0) + 1
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and not self.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            body = data[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path, request):
    """Serve ``tmp_path/root`` holding ``Met/`` and ``Flux/`` for DK-Fou (a real copy, else synthetic)."""
    root = tmp_path / "root"
    (root / "Met").mkdir(parents=True)
    (root / "Flux").mkdir()
    stem = candidate_stems("DK-Fou")[0]  # DK-Fou_2005-2005_FLUXNET2015
    from conftest import REAL_DATA_DIR

    if REAL_DATA_DIR is not None and (REAL_DATA_DIR / "plumber2").is_dir():
        shutil.copy(REAL_DATA_DIR / f"plumber2/{stem}_Met.nc", root / "Met" / f"{stem}_Met.nc")
        shutil.copy(REAL_DATA_DIR / f"plumber2/{stem}_Flux.nc", root / "Flux" / f"{stem}_Flux.nc")
    else:
        from data_helpers import synthetic_with_fluxes

        from mdpl.data.writer import write_alma

        sf = write_alma(synthetic_with_fluxes("DK-Fou", years=0.05), tmp_path / "w")
        shutil.copy(sf.met, root / "Met" / f"{stem}_Met.nc")
        shutil.copy(sf.flux, root / "Flux" / f"{stem}_Flux.nc")
    handler = type("H", (RangeHandler,), {"hits": {}, "ignore_range": False})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", root, handler, stem
    httpd.shutdown()
    httpd.server_close()


def test_candidate_names():
    assert candidate_stems("DK-Fou")[0] == "DK-Fou_2005-2005_FLUXNET2015"
    assert candidate_stems("AU-How")[0].endswith("_OzFlux")
    assert {s.rsplit("_", 1)[1] for s in candidate_stems("ES-ES2")} == {"FLUXNET2015", "LaThuile", "OzFlux"}


def test_download_and_read(server, tmp_path):
    base, root, handler, stem = server
    dest = tmp_path / "dest"
    assert main(["data", "download", "DK-Fou", "--dest", str(dest), "--base-url", base]) == 0
    for kind in ("Met", "Flux"):
        got = dest / f"{stem}_{kind}.nc"
        assert got.read_bytes() == (root / kind / got.name).read_bytes()
    assert not list(dest.glob("*.part"))
    from mdpl.data import load_sites

    assert load_sites(dest)[0].attrs["site"] == "DK-Fou"


def test_resume_from_partial(server, tmp_path):
    base, root, handler, stem = server
    data = (root / "Met" / f"{stem}_Met.nc").read_bytes()
    dest = tmp_path / "dest"
    dest.mkdir()
    part = dest / f"{stem}_Met.nc.part"
    part.write_bytes(data[: len(data) // 2])
    out = fetch(base + f"Met/{stem}_Met.nc", dest / f"{stem}_Met.nc", progress=False)
    assert out.read_bytes() == data and not part.exists()


def test_server_ignoring_range_restarts(server, tmp_path):
    base, root, handler, stem = server
    handler.ignore_range = True
    flux = (root / "Flux" / f"{stem}_Flux.nc").read_bytes()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / f"{stem}_Flux.nc.part").write_bytes(b"garbage-" * 10)
    out = fetch(base + f"Flux/{stem}_Flux.nc", dest / f"{stem}_Flux.nc", progress=False)
    assert out.read_bytes() == flux


def test_resume_sends_range(server, tmp_path, monkeypatch):
    base, root, handler, stem = server
    data = (root / "Met" / f"{stem}_Met.nc").read_bytes()
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / f"{stem}_Met.nc.part").write_bytes(data[:1000])
    import urllib.request

    seen = []
    real_urlopen = urllib.request.urlopen

    def spy(req, *a, **k):
        seen.append(req.get_header("Range"))
        return real_urlopen(req, *a, **k)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    fetch(base + f"Met/{stem}_Met.nc", dest / f"{stem}_Met.nc", progress=False)
    assert seen == ["bytes=1000-"]
    assert (dest / f"{stem}_Met.nc").read_bytes() == data


def test_missing_site_on_server(server, tmp_path):
    base, *_ = server
    with pytest.raises(DataError, match="no PLUMBER2 Met file on the server"):
        download_site("CN-Cng", tmp_path / "x", base_url=base, progress=False)


def test_offline_is_one_line(tmp_path, capsys):
    # a port nobody listens on: connection refused, like being offline
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    rc = main(["data", "download", "DK-Fou", "--dest", str(tmp_path), "--base-url", f"http://127.0.0.1:{port}/",
               "--timeout", "5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "offline" in err and len(err.splitlines()) == 1
    rc = main(["data", "download", "DK-Fuo", "--dest", str(tmp_path)])
    assert rc == 2 and "did you mean DK-Fou" in capsys.readouterr().err
