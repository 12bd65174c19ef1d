"""The outcome of one calibration: parameters per site, cost, history; saved as plain files.

A :class:`CalibrationResult` directory holds ``result.json`` (parameters in
physical units by site, source, mode, cost counters, notes), ``history.csv``
(loss per epoch or generation) and, for generator-based methods,
``generator.pt`` (the trained generator weights). Every file is written
atomically, so a directory either holds a finished result or none.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.io import atomic_torch_save, atomic_write_text

RESULT_FILE = "result.json"


@dataclass
class CalibrationResult:
    """Calibrated parameters of several sites by one method (``source``).

    ``params`` is (n_sites, P) in physical units, columns ``param_names``
    (units ``param_units``). ``n_model_evals`` counts land-model runs of one
    site over its calibration window (surrogate methods: 0, their cost is
    ``n_surrogate_evals``); ``wall_s`` is the calibration wall time in seconds.
    """

    source: str
    sites: list[str]
    param_names: list[str]
    param_units: list[str]
    params: np.ndarray
    mode: str = "site"
    history: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    n_model_evals: int = 0
    n_surrogate_evals: int = 0
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    generator_state: list | None = None  # state_dicts of the trained generator(s)
    #: epoch -> (n_sites, P) candidate parameters for a land-model check (generator routes)
    candidates: dict[int, np.ndarray] = field(default_factory=dict)
    #: extra result tables (e.g. 'sensitivity'), saved as NAME.csv
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def params_of(self, site: str) -> np.ndarray:
        return self.params[self.sites.index(site)]

    def frame(self) -> pd.DataFrame:
        """One row per site: site, source, then one column per parameter (physical units)."""
        df = pd.DataFrame(self.params, columns=self.param_names)
        df.insert(0, "source", self.source)
        df.insert(0, "site", self.sites)
        return df

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "mode": self.mode,
            "sites": list(self.sites),
            "param_names": list(self.param_names),
            "param_units": list(self.param_units),
            "params": {s: dict(zip(self.param_names, map(float, row))) for s, row in zip(self.sites, self.params)},
            "wall_s": float(self.wall_s),
            "n_model_evals": int(self.n_model_evals),
            "n_surrogate_evals": int(self.n_surrogate_evals),
            "notes": list(self.notes),
            "info": self.info,
        }

    def save(self, directory: str | os.PathLike) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        if self.generator_state is not None:
            atomic_torch_save(self.generator_state, d / "generator.pt")
        if self.history:
            atomic_write_text(d / "history.csv", pd.DataFrame(self.history).to_csv(index=False))
        for name, table in self.tables.items():
            atomic_write_text(d / f"{name}.csv", table.to_csv(index=False))
        if self.candidates:
            cand = {str(e): {s: list(map(float, row)) for s, row in zip(self.sites, p)} for e, p in self.candidates.items()}
            atomic_write_text(d / "candidates.json", json.dumps(cand))
        atomic_write_text(d / RESULT_FILE, json.dumps(self.to_json(), indent=1))  # last: marks completion
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike) -> CalibrationResult:
        d = Path(directory)
        raw = json.loads((d / RESULT_FILE).read_text())
        names = raw["param_names"]
        params = np.array([[raw["params"][s][n] for n in names] for s in raw["sites"]], dtype=float)
        hist = pd.read_csv(d / "history.csv").to_dict("records") if (d / "history.csv").is_file() else []
        state = None
        if (d / "generator.pt").is_file():
            import torch

            state = torch.load(d / "generator.pt", weights_only=True)
        tables = {p.stem: pd.read_csv(p) for p in sorted(d.glob("*.csv")) if p.stem != "history"}
        candidates = {}
        if (d / "candidates.json").is_file():
            raw_c = json.loads((d / "candidates.json").read_text())
            candidates = {int(e): np.array([[rows[s][j] for j in range(len(names))] for s in raw["sites"]])
                          for e, rows in raw_c.items()}
        return cls(
            source=raw["source"],
            sites=raw["sites"],
            param_names=names,
            param_units=raw["param_units"],
            params=params,
            mode=raw.get("mode", "site"),
            history=hist,
            wall_s=raw.get("wall_s", 0.0),
            n_model_evals=raw.get("n_model_evals", 0),
            n_surrogate_evals=raw.get("n_surrogate_evals", 0),
            notes=raw.get("notes", []),
            info=raw.get("info", {}),
            generator_state=state,
            candidates=candidates,
            tables=tables,
        )

    @staticmethod
    def exists(directory: str | os.PathLike) -> bool:
        return (Path(directory) / RESULT_FILE).is_file()
