"""The ``mdpl`` command line: a thin layer over the package.

Each subsystem contributes its sub-commands through a ``commands`` module with
``register(subparsers)``; handlers import heavy modules lazily so ``mdpl
--help`` stays fast. Every :class:`mdpl.MdplError` (and any file-system
refusal, :class:`OSError`) becomes one line on stderr and exit code 2;
``mdpl`` with no command prints the help and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mdpl import __version__
from mdpl.errors import MdplError

#: modules that add sub-commands, in the order they appear in ``mdpl --help``
COMMAND_MODULES = [
    "mdpl.data.commands",
    "mdpl.ils.commands",
    "mdpl.calibrate.commands",
    "mdpl.baselines.commands",
    "mdpl.batch",
    "mdpl.book",
    "mdpl.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mdpl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mdpl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue  # subsystem not present in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # bare `mdpl`: the help is the answer, not an error
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except MdplError as e:
        print(f"mdpl: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the file system said no (permissions, full disk, a file where a folder should be)
        where = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"mdpl: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mdpl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
