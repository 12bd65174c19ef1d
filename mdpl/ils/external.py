"""Run an external land-model executable through the :class:`~mdpl.ils.LandModel` interface.

For every (site, parameter set) the adapter writes the site's forcing as an
ALMA netCDF file and the parameters as a JSON object ``{name: value}``
(physical units), runs ``command`` with the placeholders ``{forcing}``,
``{params}``, ``{out}`` and ``{site}`` filled in, and reads the ALMA output
netCDF it wrote (variables on the forcing's time axis; extra singleton
dimensions such as ``x``/``y`` are squeezed). A failing command, a timeout or
a missing/short output raises :class:`~mdpl.errors.ModelError` with the tail
of the command's log. This is how a user plugs in their own model (the real
ILS/MATSIRO, CLM, JULES, ...).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

from mdpl.errors import ModelError
from mdpl.ils.forcing import write_forcing_netcdf
from mdpl.ils.parameters import PARAMETER_SPACE, ParameterSpace
from mdpl.ils.protocol import SimulationResult

_LOG_TAIL_LINES = 20


class ExternalModel:
    """A land model run as a subprocess per site and parameter set.

    ``command``: list of arguments (or one shell-like string) with ``{forcing}``, ``{params}``,
    ``{out}`` (and optionally ``{site}``) placeholders. ``workdir``: where the files go (a fresh
    temporary directory per call when None, removed afterwards unless ``keep_files``).
    """

    name = "external"

    def __init__(self, command: list[str] | str, workdir: str | Path | None = None, timeout_s: float = 3600.0,
                 parameter_space: ParameterSpace = PARAMETER_SPACE, keep_files: bool = False,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"):
        self.command = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
        if not self.command:
            raise ModelError("external model: empty command")
        missing = [p for p in ("{forcing}", "{params}", "{out}") if not any(p in c for c in self.command)]
        if missing:
            raise ModelError(f"external model command {' '.join(self.command)!r} lacks placeholder(s) "
                             f"{', '.join(missing)}")
        self.workdir = Path(workdir) if workdir is not None else None
        self.timeout_s = float(timeout_s)
        self.parameter_space = parameter_space
        self.keep_files = keep_files
        self.dtype = dtype
        self.device = torch.device(device)

    def __repr__(self) -> str:
        return f"ExternalModel({' '.join(self.command)!r})"

    # ------------------------------------------------------------------------------
    def _params(self, params, datasets: list[xr.Dataset]) -> np.ndarray:
        s, n = len(datasets), self.parameter_space.n
        if params is None:
            rows = []
            for ds in datasets:
                try:
                    rows.append(self.parameter_space.defaults(str(ds.attrs.get("igbp", ""))))
                except ModelError as e:
                    raise ModelError(f"site {ds.attrs.get('site', '?')}: {e}") from None
            p = np.stack(rows)[:, None, :]
        else:
            p = params.detach().cpu().numpy() if isinstance(params, torch.Tensor) else np.asarray(params, float)
            if p.ndim == 1:
                p = np.broadcast_to(p, (s, 1, n))
            elif p.ndim == 2:
                p = np.broadcast_to(p[None], (s,) + p.shape)
            elif p.ndim != 3 or p.shape[0] != s:
                raise ModelError(f"params of shape {p.shape} do not fit {s} site(s)")
        self.parameter_space.validate(p)
        return np.asarray(p, dtype=float)

    def simulate(self, forcing, params=None, *, daily: bool = False, spinup: bool = True) -> SimulationResult:
        """Run the executable once per (site, set); ``spinup`` is left to the external model."""
        datasets = [forcing] if isinstance(forcing, xr.Dataset) else list(forcing)
        if not datasets or not all(isinstance(d, xr.Dataset) for d in datasets):
            raise ModelError("ExternalModel needs canonical xarray Datasets as forcing")
        n_steps = datasets[0].sizes["time"]
        sites = [str(d.attrs.get("site", f"site{i}")) for i, d in enumerate(datasets)]
        for d, site in zip(datasets, sites):
            if d.sizes["time"] != n_steps:
                raise ModelError(f"site {site}: {d.sizes['time']} steps but site {sites[0]} has {n_steps}")
        p = self._params(params, datasets)
        n_sets = p.shape[1]
        if self.workdir is None:
            with tempfile.TemporaryDirectory(prefix="mdpl-external-") as tmp:
                outputs = self._run_all(Path(tmp), datasets, sites, p)
        else:
            self.workdir.mkdir(parents=True, exist_ok=True)
            outputs = self._run_all(self.workdir, datasets, sites, p)
        names = sorted(set.intersection(*(set(o) for o in outputs)))
        fluxes = {k: torch.as_tensor(np.stack([o[k] for o in outputs]), dtype=self.dtype, device=self.device)
                  for k in names}
        res = SimulationResult(fluxes=fluxes, time=pd.DatetimeIndex(datasets[0]["time"].values), sites=sites,
                               n_sets=n_sets, time_step_s=float(datasets[0].attrs.get("time_step_s", 1800)),
                               diagnostics={"model": " ".join(self.command)})
        return res.daily() if daily else res

    def _run_all(self, root: Path, datasets, sites, p) -> list[dict[str, np.ndarray]]:
        outputs = []
        for i, (ds, site) in enumerate(zip(datasets, sites)):
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in site)
            met = write_forcing_netcdf(ds, root / f"{safe}_met.nc")
            for j in range(p.shape[1]):
                par = root / f"{safe}_set{j}_params.json"
                par.write_text(json.dumps(self.parameter_space.to_dict(p[i, j]), indent=1))
                out = root / f"{safe}_set{j}_out.nc"
                outputs.append(self._run_one(site, met, par, out, ds.sizes["time"]))
        return outputs

    def _run_one(self, site: str, met: Path, par: Path, out: Path, n_steps: int) -> dict[str, np.ndarray]:
        fill = {"forcing": str(met), "params": str(par), "out": str(out), "site": site}
        cmd = [c.format(**fill) for c in self.command]
        log = out.with_suffix(".log")
        if out.exists():
            out.unlink()
        try:
            with open(log, "w") as fh:
                proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=self.timeout_s,
                                      cwd=str(out.parent))
            rc = proc.returncode
        except FileNotFoundError:
            raise ModelError(f"site {site}: external model executable {cmd[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            raise ModelError(f"site {site}: external model timed out after {self.timeout_s:g} s "
                             f"({' '.join(cmd)}){_tail(log)}") from None
        if rc != 0:
            raise ModelError(f"site {site}: external model failed with exit code {rc} ({' '.join(cmd)}){_tail(log)}")
        if not out.is_file():
            raise ModelError(f"site {site}: external model wrote no output {out}{_tail(log)}")
        try:
            res = xr.load_dataset(out)
        except Exception as e:  # netCDF errors vary by backend
            raise ModelError(f"site {site}: unreadable output {out} ({e}){_tail(log)}") from None
        data = {}
        for k, v in res.data_vars.items():
            extra = [d for d in v.dims if d != "time" and v.sizes[d] == 1]
            v = v.squeeze(extra) if extra else v
            if "time" not in v.dims or v.dims[0] != "time" or not np.issubdtype(v.dtype, np.number):
                continue
            if v.sizes["time"] != n_steps:
                raise ModelError(f"site {site}: output {out} variable {k} has {v.sizes['time']} steps, "
                                 f"forcing has {n_steps}")
            data[k] = np.asarray(v.values, dtype=float)
        for need in ("Qle", "Qh"):
            if need not in data:
                raise ModelError(f"site {site}: output {out} lacks {need} (ALMA name) on the time axis{_tail(log)}")
        return data


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    if not lines:
        return "; the log is empty"
    return "; last lines of its log:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])
