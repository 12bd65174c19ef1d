"""``mdpl bench NAME [options]``: the performance benchmarks, by name.

Each bench is one entry of :data:`BENCHES`: ``name -> "target:function"``,
where target is a module (``mdpl.x.y``) or a script path relative to the
repository root (``benchmarks/bench_x.py``), and ``function(argv) -> int``
parses the remaining arguments itself. Adding a bench is one line.
``mdpl bench all`` runs every bench with its defaults. Results go to
``benchmarks/RESULTS.md`` (one section per bench).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from mdpl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

#: bench name -> "module:function" or "path/relative/to/repo.py:function"
BENCHES: dict[str, str] = {
    "lsm": "benchmarks/bench_lsm.py:main",
    "surrogate": "benchmarks/bench_surrogate.py:main",
    "book": "benchmarks/bench_book.py:main",
    "calibration": "benchmarks/bench_calibration.py:main",
}


def resolve(name: str):
    """The ``main(argv)`` function of bench ``name``."""
    if name not in BENCHES:
        raise ConfigError(f"unknown bench {name!r}; known: {', '.join(sorted(BENCHES))}, all")
    target, func = BENCHES[name].rsplit(":", 1)
    if target.endswith(".py"):
        path = ROOT / target
        if not path.is_file():
            raise ConfigError(f"bench {name}: {path} not found (benches run from a source checkout)")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    return getattr(module, func)


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="run a performance benchmark (writes benchmarks/RESULTS.md)",
                              description=__doc__.splitlines()[0])
    p.add_argument("name", choices=sorted(BENCHES) + ["all"], help="which bench")
    p.add_argument("args", nargs=argparse.REMAINDER, help="options of that bench (see mdpl bench NAME --help)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    names = sorted(BENCHES) if args.name == "all" else [args.name]
    rc = 0
    for name in names:
        rc = max(rc, int(resolve(name)(args.args if args.name != "all" else []) or 0))
    return rc
