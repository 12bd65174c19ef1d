"""Shared test fixtures.

Tests run on synthetic data always and on the real flux-tower files whenever
they are present (``$MDPL_DATA_DIR`` or ``../shared/data``). The real-data
fixture skips, with a reason, only when no files are at hand.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

from mdpl.config import default_data_dir  # noqa: E402

FULL = os.environ.get("MDPL_FULL") == "1"


def _real_data_dir() -> Path | None:
    d = default_data_dir()
    if d is None or not d.is_dir():
        return None
    if not any(d.rglob("*.nc")):
        return None
    return d


REAL_DATA_DIR = _real_data_dir()


def pytest_collection_modifyitems(config, items):
    if FULL:
        return
    skip_full = pytest.mark.skip(reason="heavy run: set MDPL_FULL=1 (make test-full)")
    for item in items:
        if "full" in item.keywords:
            item.add_marker(skip_full)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The directory of real flux-tower files; skips when none are at hand."""
    if REAL_DATA_DIR is None:
        pytest.skip("no flux-tower files (set MDPL_DATA_DIR or provide ../shared/data)")
    return REAL_DATA_DIR


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep each test worker on one thread so two xdist workers share 2 cores fairly."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
