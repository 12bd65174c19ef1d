"""Shared helpers of the performance benches: hardware in words, timing, RESULTS.md sections.

Every bench prints ratios measured side by side in one run plus absolute
figures, and names the hardware; figures taken on a CPU are never labelled as
GPU figures (the device is part of every section).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import time
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def hardware() -> str:
    """CPU model and core count, torch version and threads, and the GPU if one is used."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{cpu}, {os.cpu_count()} logical cores"]
    try:
        import torch

        parts.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
        if torch.cuda.is_available():
            parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
        else:
            parts.append("no GPU (CPU figures)")
    except ImportError:  # pragma: no cover
        pass
    return "; ".join(parts)


@contextmanager
def timer(store: dict, key: str):
    """Add the wall time (s) of the block to ``store[key]``."""
    t = time.perf_counter()
    try:
        yield
    finally:
        store[key] = store.get(key, 0.0) + time.perf_counter() - t


def write_section(title: str, body: str, command: str, path: Path = RESULTS) -> Path:
    """Replace (or append) the ``## title`` section of RESULTS.md; other sections are kept as they are."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        load = "load average {:.1f} / {:.1f} / {:.1f} (1/5/15 min) when written".format(*os.getloadavg())
    except OSError:  # pragma: no cover
        load = "load average unknown"
    section = (f"## {title}\n\n- date: {stamp}\n- hardware: {hardware()}\n- machine load: {load}\n"
               f"- command: `{command}`\n\n{body.strip()}\n")
    text = path.read_text() if path.is_file() else "# Benchmark results\n\nWritten by `mdpl bench NAME`; one section per bench.\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip() + "\n\n" + section
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text.rstrip() + "\n")
    tmp.replace(path)
    return path


def table(rows: list[dict], cols: list[str]) -> str:
    """A small Markdown table."""
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(out)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
