"""The design holds: no import cycle anywhere, and the book's architecture appendix matches the imports."""

from __future__ import annotations

import textwrap

from mdpl import architecture as arch


def test_no_import_cycle_between_modules():
    graph = arch.import_graph()
    assert len(graph) > 50 and "mdpl.study" in graph["mdpl.twin"]  # the parser sees the package
    assert arch.cycles(graph) == [], "import cycles (function-level imports count): " + repr(arch.cycles(graph))


def test_no_import_cycle_between_units():
    units = arch.unit_graph()
    assert arch.cycles(units) == [], f"units importing each other: {arch.cycles(units)}"
    order = {u: k for k, group in enumerate(arch.layers(units)) for u in group}
    for u, deps in units.items():
        for d in deps:
            assert order[d] < order[u], f"{u} imports {d} from its own layer or above"


def test_architecture_page_matches_the_imports():
    page = arch.PAGE.read_text(encoding="utf-8")
    assert page == arch.render_page(), (
        "book/architecture.md no longer matches the imports: run `python -m mdpl.architecture --write` "
        "and read the diff (a new arrow between units is a design change)")


def test_the_page_names_every_module_of_a_subpackage_with_its_job():
    """A split package shows up module by module (here the design twin), each with its docstring's first line."""
    page = arch.render_page()
    rows = [line for line in page.splitlines() if line.startswith("| `twin_design` | `mdpl.twin_design.")]
    assert sorted(r.split("`")[3] for r in rows) == [f"mdpl.twin_design.{m}" for m in
                                                     ("experiment", "page", "rule", "scoring", "sites")]
    assert all(r.rstrip(" |").split("|")[-1].strip() for r in rows), "a module without a docstring"
    assert "| `ensemble` | `mdpl.ensemble.store` | The on-disk perturbed-parameter ensemble" in page


def test_a_function_level_import_cycle_is_caught(tmp_path):
    pkg = tmp_path / "mdpl"
    (pkg / "calibrate").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "calibrate" / "__init__.py").write_text("")
    (pkg / "calibrate" / "twin.py").write_text("def f():\n    from mdpl.study import run_study\n")
    (pkg / "study.py").write_text(textwrap.dedent("""
        def g():
            from .calibrate import twin
        """))
    graph = arch.import_graph(pkg)
    assert graph["mdpl.study"] == {"mdpl.calibrate.twin"}
    assert arch.cycles(graph) == [["mdpl.calibrate.twin", "mdpl.study"]]
    assert arch.cycles(arch.unit_graph(graph)) == [["calibrate", "study"]]


def test_from_package_import_submodule_points_at_the_submodule(tmp_path):
    pkg = tmp_path / "mdpl"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("def load():\n    from mdpl.data.reader import read\n")
    (pkg / "data" / "fill.py").write_text("")
    (pkg / "data" / "reader.py").write_text("from mdpl.data import fill\n")
    graph = arch.import_graph(pkg)
    assert graph["mdpl.data.reader"] == {"mdpl.data.fill"}
    assert arch.cycles(graph) == []
    (pkg / "data" / "reader.py").write_text("from mdpl.data import fill, load\n")  # a name of the package itself
    assert arch.cycles(arch.import_graph(pkg)) == [["mdpl.data", "mdpl.data.reader"]]
