"""``mdpl batch``: one papermill run per site on Dask, failures isolated, atomic outputs, resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from mdpl.batch import parse_value, run_batch, site_parameter
from mdpl.errors import ConfigError

PROBE_PARAMS = 'site = "X"\nslow_site = ""\nsleep_s = 0.0\nfail_site = ""\nmarker_dir = "."\n'
PROBE_BODY = """\
import pathlib, time
m = pathlib.Path(marker_dir)
m.mkdir(parents=True, exist_ok=True)
attempt = len(list(m.glob(f"{site}.attempt*"))) + 1
(m / f"{site}.attempt{attempt}").write_text(str(time.time()))
if site == slow_site and attempt == 1:
    time.sleep(sleep_s)  # only the first attempt is slow: the one we kill
if site == fail_site:
    raise RuntimeError(f"site {site} failed on purpose")
print("done", site)
"""


def _probe(path: Path, params: str = PROBE_PARAMS) -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell(PROBE_BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _mdpl(*args, **kw):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "mdpl", "batch", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_failing_site_is_reported_and_others_finish(tmp_path):
    nb = _probe(tmp_path / "probe.ipynb")
    out = tmp_path / "out"
    manifest = run_batch(nb, ["AA", "BB"], params={"fail_site": "BB", "marker_dir": str(tmp_path / "m")},
                         out_dir=out, n_workers=2)
    sites = manifest["sites"]
    assert sites["AA"]["status"] == "ok" and (out / "AA.ipynb").is_file()
    assert sites["BB"]["status"] == "failed"
    assert "RuntimeError: site BB failed on purpose" in sites["BB"]["error"]
    assert not (out / "BB.ipynb").exists() and (out / "BB.failed.ipynb").is_file()
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["sites"]["BB"]["status"] == "failed"
    assert on_disk["package_version"] and "git_commit" in on_disk
    assert on_disk["sites"]["AA"]["parameters"] == {"fail_site": "BB", "marker_dir": str(tmp_path / "m"), "site": "AA"}
    executed = nbformat.read(out / "AA.ipynb", as_version=4)
    assert any("done AA" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def test_killed_run_resumes_without_redoing_finished_sites(tmp_path):
    nb = _probe(tmp_path / "probe.ipynb")
    out, marks = tmp_path / "out", tmp_path / "m"
    args = [nb, "--sites", "AA", "BB", "--out", out, "--workers", "2",
            "-p", "slow_site", "BB", "-p", "sleep_s", "120", "-p", "marker_dir", marks]
    proc = _mdpl(*args, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until AA has finished and BB is midway (sleeping)
        if (out / ".status" / "AA.json").is_file() and (marks / "BB.attempt1").is_file():
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.3)
    else:
        pytest.fail("batch did not reach the midway point in time")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert (out / "AA.ipynb").is_file()
    assert not (out / "BB.ipynb").exists()  # no half-written output under the final name
    aa_mtime = (out / "AA.ipynb").stat().st_mtime_ns

    rerun = _mdpl(*args)
    text, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sites"]["AA"].get("skipped") is True
    assert manifest["sites"]["BB"]["status"] == "ok" and not manifest["sites"]["BB"].get("skipped")
    assert manifest["sites"]["BB"]["duration_s"] < 60  # the second attempt does not sleep
    assert sorted(p.name for p in marks.iterdir()) == ["AA.attempt1", "BB.attempt1", "BB.attempt2"]
    assert (out / "AA.ipynb").stat().st_mtime_ns == aa_mtime  # AA was not redone
    assert (out / "BB.ipynb").is_file()
    assert "AA: skipped" in text


def test_bad_notebooks_are_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.ipynb: notebook not found"):
        run_batch(tmp_path / "missing.ipynb", ["AA"])
    nb = _probe(tmp_path / "nosite.ipynb", params="x = 1\n")
    with pytest.raises(ConfigError, match="nosite.ipynb: the parameters cell defines neither"):
        run_batch(nb, ["AA"])
    with pytest.raises(ConfigError, match="duplicate"):
        run_batch(_probe(tmp_path / "p.ipynb"), ["AA", "AA"])


def test_site_parameter_and_values():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("sites = ['a']\nmode = 'quick'\n")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    assert site_parameter(nbformat.writes(nb), "x.ipynb") == "sites"
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("[a, b]") == ["a", "b"]
    assert parse_value("quick") == "quick"
