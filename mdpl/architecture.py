"""The package's real import graph, its layers, and the book's architecture appendix written from them.

Every ``import`` of every module is read with :mod:`ast` (function-level
imports included, since they hide cycles just as well), so the design page
can never drift from the code: ``tests/test_architecture.py`` fails on any
import cycle and whenever ``book/architecture.md`` differs from
:func:`render_page`. After moving code, rewrite the page with::

    python -m mdpl.architecture --write

Units are the subpackages (``mdpl.data``, ``mdpl.ils``, ...) and the
top-level modules (``mdpl.study``, ``mdpl.config``, ...). The command line
is one unit, ``cli``: :mod:`mdpl.cli` plus the ``commands`` module each
subsystem keeps beside its code (it may import anything below it, nothing
imports it).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PAGE = PACKAGE_DIR.parent / "book" / "architecture.md"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def module_files(root: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` file of the package."""
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> list[str]:
    """The package modules one import statement loads (``from pkg import sub`` counts as ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        subs = [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in modules]
        targets = subs if len(subs) == len(node.names) else [source, *subs]
    else:
        return []
    out = []
    for t in targets:
        while t and t not in modules and "." in t:
            t = t.rsplit(".", 1)[0]
        if t in modules and t != module:
            out.append(t)
    return out


def import_graph(root: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (top level or inside functions)."""
    files = module_files(root)
    names = set(files)
    graph: dict[str, set[str]] = {m: set() for m in files}
    for m, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            graph[m].update(_imported(node, m, path.name == "__init__.py", names))
    return graph


def unit_of(module: str) -> str:
    """The architectural unit of a module: its subpackage, its own name (top-level modules) or ``cli``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "mdpl"
    if parts[1] in ("cli", "__main__") or parts[-1] == "commands":
        return "cli"
    return parts[1]


def unit_graph(graph: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Unit -> the other units it imports."""
    graph = import_graph() if graph is None else graph
    out: dict[str, set[str]] = defaultdict(set)
    for m, deps in graph.items():
        out[unit_of(m)]
        for d in deps:
            if unit_of(d) != unit_of(m):
                out[unit_of(m)].add(unit_of(d))
    return dict(out)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (each is an import cycle), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def layers(units: dict[str, set[str]]) -> list[list[str]]:
    """Units grouped bottom-up: layer 0 imports nothing else, layer k only from layers below k.

    Raises ValueError on a cycle (then there is no layering).
    """
    if cycles(units):
        raise ValueError(f"import cycle between units: {cycles(units)}")
    level: dict[str, int] = {}

    def depth(u: str) -> int:
        if u not in level:
            level[u] = 1 + max((depth(d) for d in units.get(u, ())), default=-1)
        return level[u]

    for u in units:
        depth(u)
    out: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for u, k in level.items():
        out[k].append(u)
    return [sorted(x) for x in out]


_INTRO = """\
# Appendix: architecture

```{include} generated/banner.md
```

This page is written from the package's own import statements by
`python -m mdpl.architecture --write` (see `mdpl/architecture.py`), and
`tests/test_architecture.py` fails whenever it no longer matches the code or
any import cycle appears, between modules or between the units below. So the
design you read here is the design that runs.

Data flows one way: from the flux-tower files (`mdpl.data`) through the land
model (`mdpl.ils`), its perturbed parameter ensemble (`mdpl.ensemble`), the
networks (`mdpl.models`), the scores (`mdpl.evaluate`) and the training loops
(`mdpl.calibrate`), the study's cached stages (`mdpl.stages`, each reused
while the fingerprints of `mdpl.cache` match) up to the orchestrators that
run a whole study (`mdpl.study`, `mdpl.twin`, `mdpl.transfer`), the book's
page helpers and the command line. A unit imports only from units in lower
layers; function-level imports count too. The command line (`cli`) is
`mdpl/cli.py` plus the `commands` module each subsystem keeps beside its
code. The second table names every module of every subpackage with the
first line of its docstring: a module whose job does not fit one line is
a module to split.
"""


def _first_line(path: Path) -> str:
    """First line of a source file's docstring (empty when it has none), safe inside a table cell."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    return doc.strip().splitlines()[0].replace("|", "\\|") if doc else ""


def _summary(unit: str, files: dict[str, Path]) -> str:
    """First line of the unit's docstring (package ``__init__`` or module)."""
    module = {"cli": "mdpl.cli", "mdpl": "mdpl"}.get(unit, f"mdpl.{unit}")
    return _first_line(files[module]) if module in files else ""


def render_page(root: Path = PACKAGE_DIR) -> str:
    """The architecture appendix (MyST markdown): layers, top first, each unit with what it imports; then the
    modules of every subpackage, one line each (what its docstring says it does)."""
    files = module_files(root)
    units = unit_graph(import_graph(root))
    order = [u for group in reversed(layers(units)) for u in group]
    lines = [_INTRO]
    lines += ["## Layers", "",
              "Layer 0 imports no other unit; each unit imports only from the layers beneath it.", "",
              "| layer | unit | what it is | imports |", "| --- | --- | --- | --- |"]
    for k, group in reversed(list(enumerate(layers(units)))):
        for u in group:
            deps = ", ".join(f"`{d}`" for d in sorted(units[u])) or "none"
            lines.append(f"| {k} | `{u}` | {_summary(u, files)} | {deps} |")
    lines += ["", "## Modules", "",
              "The modules of each subpackage (layers top first), one job each.", "",
              "| unit | module | what it does |", "| --- | --- | --- |"]
    for u in order:
        for m, path in files.items():
            if unit_of(m) == u and path.name != "__init__.py" and m.count(".") == 2 and u != "cli":
                lines.append(f"| `{u}` | `{m}` | {_first_line(path)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m mdpl.architecture [--write]``: print the page, or write it to ``book/architecture.md``."""
    argv = sys.argv[1:] if argv is None else argv
    text = render_page()
    if "--write" in argv:
        PAGE.write_text(text, encoding="utf-8")
        print(f"wrote {PAGE}")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
