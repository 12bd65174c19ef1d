"""The set-up a new user relies on: pyproject, environment.yml, Makefile, CI, README."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# conda and PyPI spell a few packages differently
CONDA_TO_PYPI = {"pytorch": "torch", "netcdf4": "netCDF4"}
CONDA_ONLY = {"python", "pip"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0]


def _pyproject_packages() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return {_name(r).lower() for r in reqs}


def _environment_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, str):
            n = _name(dep).lower()
            if n not in CONDA_ONLY:
                names.add(CONDA_TO_PYPI.get(n, n).lower())
    return names


def test_environment_yml_names_the_same_packages_as_pyproject():
    py, env = _pyproject_packages(), _environment_packages()
    assert py - env == set(), f"in pyproject.toml but not environment.yml: {sorted(py - env)}"
    assert env - py == set(), f"in environment.yml but not pyproject.toml: {sorted(env - py)}"


def test_environment_yml_pins_python_311():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


def test_readme_names_exactly_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"^\s*(make \w[\w-]*)\s*$", block, flags=re.M)
    assert commands == ["make book", "make test"]


def test_ci_runs_make_test_and_hides_nothing():
    ci = (ROOT / ".ci" / "run").read_text()
    lines = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert "set -euo pipefail" in lines
    assert lines[-1] == "make test"
    assert "|| true" not in ci and "; true" not in ci


def test_makefile_pins_cpu_torch_without_gpu():
    mk = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in mk
    for target in ("install:", "book:", "test:", "bench:"):
        assert re.search(rf"^{target}", mk, flags=re.M), target


def test_console_script_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "mdpl", "--version"], capture_output=True, text=True, check=True)
    import mdpl

    assert out.stdout.strip() == f"mdpl {mdpl.__version__}"
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["mdpl"] == "mdpl.cli:main"
