"""Throughput of the embedded land model: column-steps per second vs batch size.

Measured side by side in one process, on the same forcing and steps:
batched runs at each batch size, and a loop of single-column runs (batch 1)
over the first columns, whose per-column rate gives the speed-up of
batching. Forward only (``torch.no_grad``), no spin-up, daily outputs (the
ensemble's mode). Peak memory: the process's peak resident set size on CPU
(a high-water mark, so it only grows across batch sizes) and
``torch.cuda.max_memory_allocated`` on GPU.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np
import torch


def _forcing(steps: int, time_step_s: int = 1800):
    from mdpl.data.synthetic import site_twin

    # a summer start so every process (photosynthesis, evaporation, drainage) is active
    days = int(np.ceil(steps * time_step_s / 86400)) + 1
    ds = site_twin("DK-Fou", years=days / 365.25, start="2005-06-01", time_step_s=time_step_s)
    return ds.isel(time=slice(0, steps))


def _peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if sys.platform != "darwin" else kb / 2**20


def run(batch_sizes=(1, 64, 1024, 8192), steps: int = 96, devices=("cpu",), loop_columns: int = 4,
        threads=None, seed: int = 0, compile_modes=("off",), energy_balances=("one_source",)) -> dict:
    """Measure throughput per device, CPU thread count (``threads``: int or list), step (``compile_modes``:
    'off' eager, 'on' torch.compile'd; compilation happens in an untimed warm-up), surface energy balance
    (``energy_balances``: ``lsm.energy_balance`` values, measured one after the other in the same process)
    and batch size."""
    ds = _forcing(steps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    thread_list = [None] if threads is None else ([threads] if isinstance(threads, int) else list(threads))
    before = torch.get_num_threads()
    try:
        for dev in devices:
            for n_threads in (thread_list if dev == "cpu" else [None]):
                if n_threads:
                    torch.set_num_threads(n_threads)
                for mode in compile_modes:
                    for eb in energy_balances:
                        rows += _measure(ds, dev, batch_sizes, steps, loop_columns, seed, mode, eb)
    finally:
        torch.set_num_threads(before)
    return dict(rows=rows, steps=steps, loop_columns=loop_columns, time_step_s=1800, load_average=load)


def _measure(ds, dev, batch_sizes, steps, loop_columns, seed, compile_mode="off",
             energy_balance="one_source") -> list[dict]:
    from mdpl.config import LsmConfig
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.ils.parameters import PARAMETER_SPACE

    rng = np.random.default_rng(seed)
    rows = []
    threads = torch.get_num_threads()
    model = EmbeddedLSM(LsmConfig(compile=compile_mode, energy_balance=energy_balance), device=dev,
                        dtype=torch.float32)
    step = "compiled" if compile_mode == "on" else "eager"
    forcing = model.forcing(ds)
    p_all = PARAMETER_SPACE.from_unit(rng.random((max(batch_sizes), PARAMETER_SPACE.n)))
    p_all = torch.as_tensor(p_all, dtype=torch.float32, device=model.device)
    cuda = model.device.type == "cuda"

    def timed(p):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            r = model.simulate(forcing, p, daily=True, spinup=False)
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t0, r

    t0 = time.perf_counter()
    timed(p_all[:2])  # warm-up (allocator, lazy init; compilation for batch >= 2)
    timed(p_all[0])  # and for a single column (compilers specialise size 1)
    warmup_s = time.perf_counter() - t0
    # the loop of single columns
    loop_s, singles = 0.0, []
    for c in range(loop_columns):
        dt, r = timed(p_all[c])
        loop_s += dt
        singles.append(r["Qle"][0])
    loop_rate = loop_columns * steps / loop_s
    for b in batch_sizes:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        dt, r = timed(p_all[:b])
        rate = b * steps / dt
        mem = torch.cuda.max_memory_allocated() / 2**20 if cuda else _peak_rss_mib()
        n_chk = min(b, loop_columns)
        same = bool(torch.allclose(r["Qle"][:n_chk], torch.stack(singles[:n_chk]), rtol=1e-4, atol=1e-3))
        rows.append(dict(device=str(model.device), threads=threads, step=step, energy_balance=energy_balance,
                         batch=b, seconds=dt,
                         column_steps_per_s=rate,
                         speedup_vs_loop=rate / loop_rate, peak_memory_mib=mem,
                         memory_kind="GPU allocated" if cuda else "process peak RSS",
                         matches_single_columns=same, warmup_s=warmup_s))
    rows.append(dict(device=str(model.device), threads=threads, step=step, energy_balance=energy_balance,
                     batch="loop of 1", seconds=loop_s,
                     column_steps_per_s=loop_rate,
                     speedup_vs_loop=1.0, peak_memory_mib=float("nan"), memory_kind="",
                     matches_single_columns=True, warmup_s=warmup_s))
    return rows


def render(r: dict) -> str:
    """Markdown table and a one-line summary per device."""
    cols = ["device", "threads", "step", "energy_balance", "batch", "seconds", "column_steps_per_s", "speedup_vs_loop", "peak_memory_mib",
            "matches_single_columns", "warmup_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in r["rows"]:
        cells = []
        for c in cols:
            v = row.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{r['steps']} half-hourly steps per run, forward only (no_grad), no spin-up, daily outputs, "
                 f"float32; the loop runs {r['loop_columns']} single columns "
                 "one after another in the same process. 'compiled' is the torch.compile'd step "
                 "(lsm.compile: on); warmup_s is the untimed first runs, which include compiling. Peak memory is the process's peak RSS on CPU "
                 "(a high-water mark) and torch.cuda.max_memory_allocated on GPU. "
                 f"1-minute load average when the run started: {r['load_average']:.1f} "
                 f"on {os.cpu_count()} logical cores (other processes share the CPU).")
    return "\n".join(lines)
