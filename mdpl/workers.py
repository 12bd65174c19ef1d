"""Worker processes for independent pieces of ``mdpl book`` and the study: two CPU cores, two lanes.

Most of the study's CPU time goes to small tensor operations (the land
model's time steps, short LSTMs) whose cost is per-operation overhead on one
core: a second torch thread in the same process adds nothing (and two
processes with two threads each on two cores slow each other down), while a
second *process* doing other work uses the idle core fully. So independent
stages run side by side in worker processes, each with one torch thread:
:func:`pool` makes them.

Workers start with ``spawn`` (never ``fork``: a forked torch process can
deadlock in its thread pool) and set ``OMP_NUM_THREADS=1`` and
``torch.set_num_threads(1)`` before any work. What a worker computes reaches
the caller through the study's on-disk caches (:mod:`mdpl.cache`) or a
picklable return value, so a result does not depend on which lane ran it.

``jobs`` (how many lanes) comes from ``--jobs`` or ``$MDPL_JOBS``; the
default is ``min(2, cores)``: 1 means everything runs in this process, in
order, as before.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from mdpl.errors import ConfigError

#: environment variable with the default number of lanes
JOBS_ENV = "MDPL_JOBS"
#: thread-count variables set to 1 in every worker (and in notebook kernels that run side by side)
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def default_jobs() -> int:
    """Lanes when none are asked for: ``$MDPL_JOBS``, else ``min(2, CPU cores available to this process)``."""
    env = os.environ.get(JOBS_ENV, "").strip()
    if env:
        return check_jobs(env, where=f"${JOBS_ENV}")
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


def check_jobs(value, *, where: str = "--jobs") -> int:
    """``value`` as a number of lanes (an integer >= 1), else :class:`mdpl.ConfigError` naming ``where``."""
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{where}: expected a whole number of parallel jobs >= 1, got {value!r}") from None
    if n < 1:
        raise ConfigError(f"{where}: expected a whole number of parallel jobs >= 1, got {value!r}")
    return n


def _init_worker() -> None:
    for k in THREAD_VARS:
        os.environ[k] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


class _Pool(ProcessPoolExecutor):
    """A process pool whose ``with`` block, left by an exception, stops its workers instead of waiting for them."""

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return super().__exit__(exc_type, exc, tb)
        procs = list((getattr(self, "_processes", None) or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # the work they were doing is no longer wanted
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=10)
        return False


def pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, one torch thread each (use as a context manager: a failure in
    the block stops the workers, a normal end waits for what was submitted)."""
    return _Pool(max_workers=max(1, int(workers)), mp_context=multiprocessing.get_context("spawn"),
                 initializer=_init_worker)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Run the block with ``torch.set_num_threads(n)`` in this process (None: leave it), restoring it after.

    While a worker computes beside it, this process keeps to one thread too.
    """
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
