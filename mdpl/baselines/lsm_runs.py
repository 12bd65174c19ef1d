"""Re-run the land model with a study's parameter sets on the peers' basis.

The calibration reports daily/monthly skill on its own split. To set MdPL
beside JULES and ecLand on *their* basis, each site's whole record is run at
its native step with every parameter source of the study (``default``,
``mdpl``, ``dpl``, ``direct``) and scored on half-hourly measured steps of
the uncorrected fluxes, plus monthly means of those steps. The whole record
contains the calibration's training period, so calibrated rows are
``sample='in'``; default parameters never saw the data (``'out'``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.errors import DataError

log = logging.getLogger(__name__)

#: calibration ``source`` -> model name in the table (same as the study rows)
SOURCE_NAMES = {"default": "default", "mdpl": "MdPL", "dpl": "dPL", "direct": "direct"}


def read_study_parameters(study_dir: str | Path) -> pd.DataFrame:
    """``<study_dir>/parameters.csv``: one row per (site, source), parameters in physical units."""
    p = Path(study_dir) / "parameters.csv"
    if not p.is_file():
        raise DataError(f"{p}: no parameters.csv in the study directory")
    df = pd.read_csv(p)
    missing = {"site", "source"} - set(df.columns)
    if missing:
        raise DataError(f"{p}: lacks column(s) {', '.join(sorted(missing))}")
    return df


def simulate_sources(ds: xr.Dataset, params: Mapping[str, np.ndarray], model=None) -> dict[str, dict[str, np.ndarray]]:
    """Native-step Qle/Qh (W m-2) of one site for each named parameter vector (physical units)."""
    import torch

    from mdpl.ils.model import EmbeddedLSM

    model = model or EmbeddedLSM(device="cpu")
    names = list(params)
    p = np.stack([np.asarray(params[n], float) for n in names])[None]  # (1 site, n_sets, P)
    with torch.no_grad():
        res = model.simulate(ds, p)
    return {n: {k: res[k][i].detach().cpu().numpy().astype(float) for k in ("Qle", "Qh")} for i, n in enumerate(names)}


def study_lsm_rows(
    study_dir: str | Path,
    datasets: Mapping[str, xr.Dataset],
    months: Mapping[str, Mapping[str, set[str]]] | None = None,
    model=None,
) -> list[dict]:
    """Half-hourly and monthly rows (peers' basis) of the land model with each study parameter source.

    ``model``: a land model with ``simulate(ds, params)`` (default: the embedded LSM on CPU).
    """
    from mdpl.evaluate.tables import series_rows
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.ils.parameters import PARAMETER_SPACE

    p = Path(study_dir) / "parameters.csv"
    if not p.is_file():
        log.warning("%s: no parameters.csv; land-model rows on the PLUMBER2 basis skipped", p)
        return []
    table = read_study_parameters(study_dir)
    names = list(PARAMETER_SPACE.names)
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise DataError(f"{p}: lacks parameter column(s) {', '.join(missing)}")
    model = model or EmbeddedLSM(device="cpu")
    rows: list[dict] = []
    for site, ds in datasets.items():
        sub = table[table["site"] == site]
        sets = {str(r["source"]): r[names].to_numpy(float) for _, r in sub.iterrows()}
        if "default" not in sets:
            sets["default"] = PARAMETER_SPACE.defaults(str(ds.attrs.get("igbp", "")))
        sims = simulate_sources(ds, sets, model)
        for src, fl in sims.items():
            r = series_rows(ds, fl, SOURCE_NAMES.get(src, src), "out" if src == "default" else "in",
                            comparison="plumber2_basis", scales=("halfhourly", "monthly"),
                            months=(months or {}).get(site))
            for row in r:
                row["basis"] += f"; land model with {src} parameters over the whole record"
            rows += r
    return rows
