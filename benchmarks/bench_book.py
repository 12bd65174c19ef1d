"""The quick book build, end to end, and its slowest stages.

Calls :func:`mdpl.book.run_book` (what ``make book`` runs) with a fresh
study directory so nothing is served from a cache, times the whole call and
reports the stages it times itself (study, each chapter, the HTML build),
slowest first.

Run: ``python benchmarks/bench_book.py [--no-write]`` (or ``mdpl bench book``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import hardware, table, write_section  # noqa: E402


ROOT = Path(__file__).resolve().parent.parent


def make_book_config(mode: str) -> Path | None:
    """The configuration ``make book MODE=mode`` passes (``configs/book-{mode}.yaml``), if the checkout has it."""
    p = ROOT / "configs" / f"book-{mode}.yaml"
    return p if p.is_file() else None


def run(mode: str = "quick", out: str | None = None, build: bool = True, config: str | None = None) -> dict:
    """Build the book once from scratch; ``{'total_s', 'stages': {name: s}, 'source', 'sites'}``."""
    from mdpl.book import run_book

    config = config or make_book_config(mode)
    with tempfile.TemporaryDirectory(prefix="mdpl-bench-book-") as tmp:
        t0 = time.perf_counter()
        res = run_book(mode=mode, config=config, out=out or tmp, build=build, command=f"mdpl book --mode {mode}")
        total = time.perf_counter() - t0
    return {"total_s": total, "stages": dict(res["timings"]), "source": res["source"], "sites": list(res["sites"]),
            "mode": mode, "config": str(Path(config).relative_to(ROOT)) if config else "defaults",
            "hardware": hardware()}


SUB = "study stage "  # sub-stages of "study (run or load from cache)": shown under it, not summed twice


def render(r: dict) -> str:
    top = sorted(((k, v) for k, v in r["stages"].items() if not k.startswith(SUB)), key=lambda kv: -kv[1])
    sub = sorted(((k, v) for k, v in r["stages"].items() if k.startswith(SUB)), key=lambda kv: -kv[1])
    rows = []
    for k, v in top:
        rows.append({"stage": k, "wall s": v, "share": f"{100 * v / r['total_s']:.0f} %"})
        if k.startswith("study") and sub:
            rows += [{"stage": f"&nbsp;&nbsp;↳ {n.removeprefix(SUB)}", "wall s": w, "share": f"({100 * w / r['total_s']:.0f} %)"}
                     for n, w in sub]
    accounted = sum(v for _, v in top)
    rows.append({"stage": "other (config, banner, reproducibility page)", "wall s": r["total_s"] - accounted,
                 "share": f"{100 * (r['total_s'] - accounted) / r['total_s']:.0f} %"})
    return (
        f"`mdpl book --mode {r['mode']} --config {r.get('config', 'defaults')}` (what `make book` runs) "
        f"from an empty study directory on {r['source']} data "
        f"({', '.join(r['sites'])}): **{r['total_s']:.0f} s end to end** ({r['total_s'] / 60:.1f} min). "
        "Rows marked ↳ are parts of the study stage above them.\n\n"
        + table(rows, ["stage", "wall s", "share"])
        + "\n"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="mdpl bench book", description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("quick", "full"), default="quick")
    ap.add_argument("--no-build", action="store_true", help="execute the notebooks but skip jupyter-book build")
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    a = ap.parse_args(argv)
    r = run(a.mode, build=not a.no_build)
    text = render(r)
    print(f"hardware: {r['hardware']}\n{text}")
    if not a.no_write:
        write_section("Book build", text, f"python benchmarks/bench_book.py --mode {a.mode}" + (" --no-build" if a.no_build else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
