"""Land model throughput: column-steps/s at several batch sizes, speed-up over a loop of single columns.

Thin wrapper over :mod:`mdpl.ils.benchmark`. Run:
``python benchmarks/bench_lsm.py [--batch-sizes 1 64 1024 8192] [--steps N] [--device cpu|cuda|all]``
(or ``mdpl bench lsm ...``); ``--write`` stores the table in RESULTS.md ("Land model throughput").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import hardware, write_section  # noqa: E402

TITLE = "Land model throughput"


def _check(a) -> None:
    """Counts must be positive: a zero batch or a negative step count measures nothing (one line, exit 2)."""
    from mdpl.errors import ConfigError

    for name, values in (("--batch-sizes", a.batch_sizes), ("--steps", [a.steps]), ("--loop-columns", [a.loop_columns]),
                         ("--threads", a.threads)):
        bad = [v for v in values if v < 1]
        if bad:
            raise ConfigError(f"{name}: must be >= 1, got {', '.join(map(str, bad))}")


def main(argv=None) -> int:
    import torch

    from mdpl.ils.benchmark import render, run

    ap = argparse.ArgumentParser(prog="mdpl bench lsm", description=__doc__.splitlines()[0])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64, 1024, 8192])
    ap.add_argument("--steps", type=int, default=96, help="half-hourly steps per run (default 96 = 2 days)")
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu and, when present, cuda)")
    ap.add_argument("--loop-columns", type=int, default=4, help="single columns run one by one for the speed-up")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts to measure")
    ap.add_argument("--compile", default="both", choices=["off", "on", "both"],
                    help="eager step (off), torch.compile'd step (on) or both side by side (default)")
    ap.add_argument("--energy-balance", nargs="+", default=["one_source"], choices=["one_source", "two_source"],
                    help="surface energy balance(s) (lsm.energy_balance), measured side by side in one run")
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    a = ap.parse_args(argv)
    _check(a)
    if a.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [a.device]
    modes = ["off", "on"] if a.compile == "both" else [a.compile]
    r = run(a.batch_sizes, a.steps, devices, a.loop_columns, a.threads, compile_modes=modes,
            energy_balances=a.energy_balance)
    body = render(r)
    print(f"hardware: {hardware()}")
    print(body)
    if not a.no_write:
        cmd = "mdpl bench lsm " + " ".join(argv if argv is not None else sys.argv[1:])
        p = write_section(TITLE, body, cmd.strip())
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
