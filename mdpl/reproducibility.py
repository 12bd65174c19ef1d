"""The reproducibility appendix: this machine, its package versions, the seeds and the run times, in markdown."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import yaml


PACKAGES = ("mdpl", "numpy", "scipy", "pandas", "xarray", "netCDF4", "torch", "matplotlib", "dask",
            "distributed", "papermill", "jupyter-book", "jupytext", "nbval", "cma")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each package ('not installed' when absent)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def environment_info() -> dict[str, Any]:
    """Python, OS, CPU count, memory, GPU (if torch sees one) and package versions of this machine."""
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or "unknown",
        "cpu_count": os.cpu_count(),
    }
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        info["memory_gib"] = None
    import torch  # a dependency of mdpl: no fallback that would hide a broken install

    info["torch_threads"] = torch.get_num_threads()
    info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    info["packages"] = package_versions()
    return info


def reproducibility_markdown(*, env: Mapping[str, Any], config: Mapping[str, Any], timings: Mapping[str, float],
                             data_source: str, sites: Sequence[str], git_commit: str | None,
                             command: str, banner: str = "") -> str:
    """The reproducibility appendix: environment, versions, hardware, seeds and run times (markdown)."""
    lines = ["# Reproducibility", "", banner, "",
             "This page is written by `mdpl book` at the end of every build, so it describes the run "
             "whose results you are reading.", "",
             "## How this book was made", "", f"```bash\n{command}\n```", "",
             f"- git commit: `{git_commit or 'unknown (not a git checkout)'}`",
             f"- data: **{data_source}**, sites: {', '.join(sites) if sites else 'none'}",
             f"- study mode: `{config.get('mode')}`, seed: `{config.get('seed')}`, device: `{config.get('device')}`",
             "", "## Hardware and software", "",
             "| item | value |", "| --- | --- |"]
    for k in ("python", "platform", "machine", "processor", "cpu_count", "memory_gib", "torch_threads", "gpu"):
        if k in env:
            lines.append(f"| {k.replace('_', ' ')} | {env[k]} |")
    lines += ["", "Table: package versions.", "", "| package | version |", "| --- | --- |"]
    for k, v in env.get("packages", {}).items():
        lines.append(f"| {k} | {v} |")
    lines += ["", "## Run times", "", "Wall-clock seconds on the machine above.", "",
              "| step | wall time (s) |", "| --- | --- |"]
    for k, v in timings.items():
        lines.append(f"| {k} | {v:.1f} |")
    lines += ["", "## Seeds and configuration", "",
              "Every random draw (ensemble sampling, network initialisation, training order) derives from the "
              f"study seed `{config.get('seed')}`. The full resolved configuration:", "",
              "```yaml", _yaml(config).rstrip(), "```", ""]
    return "\n".join(lines)


def _yaml(d: Mapping[str, Any]) -> str:

    return yaml.safe_dump(dict(d), sort_keys=False)
