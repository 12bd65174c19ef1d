"""The chapter notebooks: jupytext percent files with a papermill parameters cell, one skeleton, no hidden logic."""

from __future__ import annotations

import ast
from pathlib import Path

import jupytext
import pytest

from mdpl.book import NOTEBOOKS_DIR, chapters

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
PARAMETERS = {"sites", "mode", "device", "data_dir", "out_dir", "seed", "config"}
SKELETON = ["overview", "what you need", "the run", "the figures and tables", "what it shows", "what comes next"]


def test_there_are_chapters_and_the_toc_lists_only_existing_ones():
    assert NOTEBOOKS, "no notebooks/NN_name.py found"
    toc = [src for _, src in chapters()]
    assert toc and all(src in NOTEBOOKS for src in toc)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_parameters_and_skeleton(path: Path):
    nb = jupytext.read(path)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    names = {t.id for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert PARAMETERS <= names, f"{path.name}: parameters cell lacks {sorted(PARAMETERS - names)}"
    headings = [line.lstrip("#").strip().lower() for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("## ")]
    assert headings == SKELETON, f"{path.name}: sections {headings} differ from the skeleton {SKELETON}"
    title = nb.cells[0].source.splitlines()[0]
    assert title.startswith("# ") and title[2:].split(".")[0] == str(int(path.stem[:2]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_holds_no_untested_logic(path: Path):
    """Notebooks call the package: no function or class definitions, and they import from mdpl."""
    nb = jupytext.read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    tree = ast.parse(code)
    defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    assert not defs, f"{path.name}: move {defs} into the package (mdpl.presentation, the science packages or mdpl.plots) and test it there"
    assert "from mdpl" in code
    assert "Captions(" in code and "data_banner(" in code, f"{path.name}: captions and the data banner are required"
