"""``mdpl book`` end to end on the tiny configuration: executed chapters, nbval, and the HTML book.

One module-scoped build (tiny study, every chapter in the toc executed with
papermill, ``jupyter-book build -W``) feeds every test here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mdpl.book import BOOK_DIR, REPO_ROOT, chapters, toc_files

TINY = Path(__file__).with_name("book_tiny.yaml")

#: nbval sanitisation: timestamps, paths, durations and memory addresses (order matters). Numbers are NOT
#: sanitised: nbval compares them exactly as the page prints them (the tables' and sentences' own precision)
SANITIZE = r"""
[timestamps]
regex: \d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2})?
replace: TIMESTAMP

[paths]
regex: (/[\w.\-]+)+/?
replace: PATH

[durations]
regex: \b\d+(\.\d+)?\s?(s|ms|seconds|min)\b
replace: DURATION

[addresses]
regex: 0x[0-9a-fA-F]+
replace: ADDRESS
"""


def _nbval(paths, tmp: Path) -> subprocess.CompletedProcess:
    san = tmp / "sanitize.cfg"
    san.write_text(SANITIZE)
    env = {**os.environ, "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore:IProgress not found"}
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(san),
           "-p", "no:cacheprovider", "-p", "no:xdist", "--color=no", "--rootdir", str(tmp), *map(str, paths)]
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)


#: days of synthetic forcing in the tiny twin study (short: the land model steps half-hourly)
TINY_DAYS = 20


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A tiny twin study, then ``mdpl book --study-dir ... --strict`` into a copy of the book sources."""
    from mdpl.config import load_config
    from mdpl.data.synthetic import site_twin
    from mdpl.twin import twin_experiment
    from mdpl.transfer import loso_transfer

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixture: runs before conftest's per-test thread limit
    tmp = tmp_path_factory.mktemp("book")
    cfg = load_config(TINY)
    study = tmp / "study"
    datasets = [site_twin(s, years=TINY_DAYS / 365.25, seed=cfg.seed) for s in cfg.data.sites]
    twin_experiment(cfg, study, datasets=datasets, progress=False)
    loso_transfer(cfg, study, datasets)  # chapter 6; mdpl book reuses it
    book = tmp / "book"
    shutil.copytree(BOOK_DIR, book, ignore=shutil.ignore_patterns("_build", "generated"))
    env = {**os.environ, "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mdpl", "book", "--config", str(TINY), "--study-dir", str(study),
                           "--book-dir", str(book), "--strict"], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    torch.set_num_threads(threads)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"tmp": tmp, "book": book, "stdout": proc.stdout}


def test_every_page_of_the_toc_is_built(built):
    html = built["book"] / "_build" / "html"
    for f in toc_files(built["book"]):
        assert (html / f"{f}.html").is_file(), f"page {f} missing from the built book"
    assert f"book: {(html / 'index.html').resolve()}" in built["stdout"]


def test_every_page_says_which_data_it_ran_on(built):
    html = built["book"] / "_build" / "html"
    for f in toc_files(built["book"]):
        text = (html / f"{f}.html").read_text()
        assert "embedded synthetic default" in text or "Real flux-tower data" in text, f"{f}: no data banner"
        assert ":::{admonition}" not in text and "{cite:" not in text, f"{f}: MyST left unrendered"


def test_every_figure_has_a_caption_and_every_table_units(built):
    for name, _ in chapters(built["book"]):
        nb = nbformat.read(built["book"] / "generated" / f"{name}.ipynb", as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.get("output_type") == "error"], f"{name}: an error output"
        n_png = 0
        for i, o in enumerate(outputs):
            if "image/png" in o.get("data", {}):
                n_png += 1
                nxt = outputs[i + 1].get("data", {}).get("text/markdown", "") if i + 1 < len(outputs) else ""
                assert nxt.startswith("**Figure"), f"{name}: figure {n_png} has no caption under it"
            md = o.get("data", {}).get("text/markdown", "")
            if md.startswith("**Table"):
                assert "Units:" in md, f"{name}: table caption without units: {md[:80]}"
        assert n_png >= 1, f"{name}: no figure"


def test_code_is_folded_on_every_chapter(built):
    """Every code cell is tagged hide-input, and the HTML shows it folded under a toggle, outputs in view."""
    html = built["book"] / "_build" / "html"
    for name, _ in chapters(built["book"]):
        nb = nbformat.read(built["book"] / "generated" / f"{name}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all("hide-input" in c.metadata.get("tags", []) for c in code), f"{name}: code not folded"
        page = (html / "generated" / f"{name}.html").read_text()
        assert page.count("tag_hide-input") >= len(code), f"{name}: the HTML does not fold the code"
        assert "<details" in page and "Figure" in page


def test_reproducibility_page_records_the_run(built):
    text = (built["book"] / "generated" / "reproducibility.md").read_text()
    for needle in ("## Hardware and software", "| torch |", "## Run times", "| chapter 01_data_sites |",
                   "seed", "mdpl book"):
        assert needle in text


def test_nbval_reproduces_the_executed_notebooks(built):
    notebooks = [built["book"] / "generated" / f"{name}.ipynb" for name, _ in chapters(built["book"])]
    proc = _nbval(notebooks, built["tmp"])
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout


def test_nbval_harness_catches_errors_and_changed_numbers(tmp_path):
    """The same nbval invocation passes a number shown as before, and fails a changed number, text or an error.

    Numbers are compared at the precision they are printed: 0.8412 shown as
    ``0.84`` still passes when it becomes 0.8449, not when it becomes 0.8451.
    """
    nb = nbformat.v4.new_notebook()
    same = nbformat.v4.new_code_cell("print(f'KGE {0.8449:.2f} after 12.5 s at /tmp/x/run')")
    same.outputs = [nbformat.v4.new_output("stream", name="stdout", text="KGE 0.84 after 3.1 s at /home/y/run\n")]
    number = nbformat.v4.new_code_cell("print(f'KGE {0.8451:.2f}')")
    number.outputs = [nbformat.v4.new_output("stream", name="stdout", text="KGE 0.84\n")]
    changed = nbformat.v4.new_code_cell("print('alpha')")
    changed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="beta\n")]
    boom = nbformat.v4.new_code_cell("raise RuntimeError('broken chapter')")
    nb.cells = [same, number, changed, boom]
    for i, cell in enumerate(nb.cells, 1):
        cell.execution_count = i
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    proc = _nbval([path], tmp_path)
    assert proc.returncode != 0
    assert "1 passed" in proc.stdout and "3 failed" in proc.stdout, proc.stdout[-2000:]
