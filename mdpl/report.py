"""Small helpers the book's notebooks call, so notebooks hold no untested logic.

- :func:`notebook_config`: the study configuration from a notebook's papermill parameters
- :func:`data_banner`: the "this runs on synthetic data" / "real data" notice on every page
- :class:`Captions`: numbered figure and table captions (tables must state their units)
- :func:`describe_change`: RMSE and R changes put into words, with which direction is better
- :func:`environment_info` / :func:`reproducibility_markdown`: the reproducibility appendix
"""

from __future__ import annotations

import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mdpl.config import Config, load_config

# --------------------------------------------------------------------------- configuration


def notebook_config(config: str | os.PathLike | None = None, *, mode: str = "quick", seed: int | None = None,
                    device: str | None = None, data_dir: str | None = None,
                    sites: Sequence[str] | None = None, out_dir: str | None = None) -> Config:
    """The study configuration a notebook runs with: ``config`` YAML (or defaults) plus its parameters.

    Empty strings and empty lists mean "keep what the YAML (or the default) says",
    so a notebook's parameter cell can carry neutral defaults.
    """
    cfg = load_config(config or None, mode=mode or None, seed=seed, device=device or None,
                      out_dir=out_dir or None)
    if data_dir:
        cfg.data.data_dir = str(data_dir)
    if sites:
        cfg.data.sites = [str(s) for s in sites]
    return cfg


# --------------------------------------------------------------------------- banner

def data_banner(source: str, sites: Sequence[str] = (), data_dir: str | os.PathLike | None = None) -> str:
    """A MyST admonition saying what data the page ran on ('real' or 'synthetic').

    Paths are reduced to their last two components so the text does not
    depend on where the book was built.
    """
    names = ", ".join(map(str, sites)) if sites else "none"
    if source == "synthetic":
        return (
            ":::{admonition} Synthetic data\n:class: warning\n"
            "This page ran on the **embedded synthetic default**: no flux-tower files were found "
            "(set `MDPL_DATA_DIR` to a directory of PLUMBER2 `Met`/`Flux` netCDF files to use real towers). "
            f"The synthetic sites ({names}) are weather-generator twins of real sites, with fluxes from the "
            "land model at known parameters plus noise, so numbers here test the method, not the world.\n:::\n"
        )
    if source == "real":
        where = Path(data_dir).parts[-2:] if data_dir else ()
        loc = f" from `{'/'.join(where)}`" if where else ""
        return (":::{admonition} Real flux-tower data\n:class: note\n"
                f"This page ran on real flux-tower observations{loc}: {names}.\n:::\n")
    if source == "given":
        return (":::{admonition} Datasets supplied directly\n:class: note\n"
                f"This page ran on site datasets handed to the study directly ({names}), not read from a data "
                "directory.\n:::\n")
    raise ValueError(f"data_banner: source must be 'real', 'synthetic' or 'given', got {source!r}")


def study_source(study) -> str:
    """'synthetic' for a twin experiment (its observations come from the land model), else the study's source."""
    out = Path(study.out_dir)
    if (out / "twin_summary.json").is_file() or (out / "twin_parameters.csv").is_file():
        return "synthetic"
    return str(study.data_source)


def show_markdown(text: str) -> None:
    """Display markdown in a notebook (plain print outside IPython)."""
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:  # pragma: no cover - outside Jupyter
        print(text)


# --------------------------------------------------------------------------- captions

class Captions:
    """Numbered captions for one chapter: ``Figure 4.1``, ``Table 4.1`` ...

    >>> cap = Captions(4)
    >>> cap.figure_text("Taylor diagram of Qle.")
    '**Figure 4.1.** Taylor diagram of Qle.'
    >>> cap.table_text("KGE per site.", units="dimensionless")
    '**Table 4.1.** KGE per site. Units: dimensionless.'
    """

    def __init__(self, chapter: int | str):
        self.chapter = chapter
        self.n_fig = 0
        self.n_tab = 0

    def figure_text(self, caption: str) -> str:
        if not caption.strip():
            raise ValueError("every figure needs a caption")
        self.n_fig += 1
        return f"**Figure {self.chapter}.{self.n_fig}.** {caption.strip()}"

    def table_text(self, caption: str, *, units: str) -> str:
        if not caption.strip():
            raise ValueError("every table needs a caption")
        if not units or not units.strip():
            raise ValueError("every table must state its units (use 'dimensionless' where there are none)")
        self.n_tab += 1
        return f"**Table {self.chapter}.{self.n_tab}.** {caption.strip()} Units: {units.strip()}."

    def figure(self, fig, caption: str, *, dpi: int = 100) -> None:
        """Display ``fig`` as a PNG with its numbered caption underneath, then close it.

        The PNG is rendered here (tight bounding box), so it shows the same
        under any matplotlib backend, including Agg in tests and batch runs.
        """
        import io

        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        text = self.figure_text(caption)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        display(Image(data=buf.getvalue(), format="png"))
        show_markdown(text)

    def table(self, table, caption: str, *, units: str) -> None:
        """Display the numbered caption (with units) and then ``table`` (DataFrame or Styler)."""
        from IPython.display import display

        show_markdown(self.table_text(caption, units=units))
        display(table)


# --------------------------------------------------------------------------- words for numbers

def _fmt(x: float, nd: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{nd}f}"


def describe_change(before: Mapping[str, float], after: Mapping[str, float], *, flux: str, units: str,
                    before_label: str = "default", after_label: str = "MdPL") -> str:
    """One sentence each on how RMSE and R changed from ``before`` to ``after``, and whether that is better.

    ``before``/``after`` hold ``rmse`` (in ``units``) and ``r``. Lower RMSE is
    better; higher R is better.
    """
    parts = []
    b, a = before.get("rmse", math.nan), after.get("rmse", math.nan)
    if math.isfinite(b) and math.isfinite(a):
        pct = 100.0 * (a - b) / b if b else math.nan
        verdict = "better" if a < b else ("worse" if a > b else "unchanged")
        direction = "fell" if a < b else ("rose" if a > b else "stayed")
        nd = 1 if _fmt(b, 1) != _fmt(a, 1) else 3
        parts.append(f"{flux} RMSE {direction} from {_fmt(b, nd)} to {_fmt(a, nd)} {units} "
                     f"({_fmt(pct, 0 if abs(pct) >= 1 else 1)} %) with {after_label} compared with {before_label}: "
                     f"{verdict} (lower RMSE is better).")
    else:
        parts.append(f"{flux} RMSE: not available for both {before_label} and {after_label}.")
    b, a = before.get("r", math.nan), after.get("r", math.nan)
    if math.isfinite(b) and math.isfinite(a):
        verdict = "better" if a > b else ("worse" if a < b else "unchanged")
        direction = "rose" if a > b else ("fell" if a < b else "stayed")
        nd = 2 if _fmt(b) != _fmt(a) else 4
        parts.append(f"Its correlation R {direction} from {_fmt(b, nd)} to {_fmt(a, nd)}: {verdict} (higher R is better).")
    else:
        parts.append(f"Its correlation R: not available for both {before_label} and {after_label}.")
    return " ".join(parts)


# --------------------------------------------------------------------------- reproducibility

PACKAGES = ("mdpl", "numpy", "scipy", "pandas", "xarray", "netCDF4", "torch", "matplotlib", "dask",
            "distributed", "papermill", "jupyter-book", "jupytext", "nbval", "cma")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    """Installed version of each package ('not installed' when absent)."""
    from importlib import metadata

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
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:  # pragma: no cover
        info["gpu"] = "unknown"
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
    import yaml

    return yaml.safe_dump(dict(d), sort_keys=False)


# --------------------------------------------------------------------------- chapter 1: sites and data

def _datasets(sites) -> list:
    """A list of canonical site Datasets from a list, tuple or mapping of them."""
    if isinstance(sites, Mapping):
        return list(sites.values())
    return list(sites)


def sites_table(sites):
    """One row per site: code, name, IGBP class, PFT group, location, period and time step (from attrs)."""
    import pandas as pd

    rows = []
    for ds in _datasets(sites):
        a = ds.attrs
        t = ds["time"].values
        step = float(a.get("time_step_s", 0) or 0)
        rows.append({
            "site": a.get("site"), "name": a.get("site_name", ""), "igbp": a.get("igbp", ""),
            "pft_group": a.get("pft_group", ""), "latitude": a.get("latitude"), "longitude": a.get("longitude"),
            "elevation_m": a.get("elevation_m"), "start": str(pd.Timestamp(t[0]).date()),
            "end": str(pd.Timestamp(t[-1]).date()), "years": round(len(t) * step / (365.25 * 86400), 2) if step else None,
            "time_step_min": step / 60 if step else None, "source": a.get("source", ""),
        })
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).reset_index(drop=True)


def coverage_table(sites, fluxes: Sequence[str] = ("Qle", "Qh", "NEE")):
    """Percent of time steps where each flux was measured (not gap-filled), one row per site."""
    import pandas as pd

    from mdpl.data.schema import measured_name

    rows = []
    for ds in _datasets(sites):
        row = {"site": ds.attrs.get("site"), "pft_group": ds.attrs.get("pft_group", "")}
        for f in fluxes:
            m = measured_name(f)
            row[f] = 100.0 * float(ds[m].values.mean()) if m in ds else 0.0
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).set_index(["pft_group", "site"])


def climate_table(sites):
    """Per-site means of the forcing and the measured fluxes in familiar units.

    Columns: SWdown (W m-2), Tair (degC), precipitation (mm yr-1), Wind (m s-1),
    and the mean of Qle, Qh (W m-2) and NEE (umol m-2 s-1) over measured steps.
    """
    import numpy as np
    import pandas as pd

    from mdpl.data.schema import measured_name

    rows = []
    for ds in _datasets(sites):
        precip = ds["Rainf"].values + (ds["Snowf"].values if "Snowf" in ds else 0.0)  # kg m-2 s-1
        row = {
            "site": ds.attrs.get("site"), "pft_group": ds.attrs.get("pft_group", ""),
            "SWdown (W m-2)": float(np.nanmean(ds["SWdown"].values)),
            "Tair (degC)": float(np.nanmean(ds["Tair"].values) - 273.15),
            "precipitation (mm yr-1)": float(np.nanmean(precip) * 86400 * 365.25),
            "Wind (m s-1)": float(np.nanmean(ds["Wind"].values)),
        }
        for f, unit in (("Qle", "W m-2"), ("Qh", "W m-2"), ("NEE", "umol m-2 s-1")):
            if f in ds:
                m = ds[measured_name(f)].values if measured_name(f) in ds else np.isfinite(ds[f].values)
                v = ds[f].values[m]
                row[f"{f} (measured, {unit})"] = float(np.nanmean(v)) if v.size else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["pft_group", "site"]).set_index(["pft_group", "site"])


# --------------------------------------------------------------------------- chapter 2: sensitivity

def parameter_sensitivity(params_unit, outputs: Mapping[str, Any], names: Sequence[str]):
    """Spearman rank correlation of each parameter with each output across ensemble members.

    ``params_unit`` is (members, P) (unit cube or physical: ranks are the same);
    ``outputs`` maps a flux to a (members,) summary, e.g. the member's mean Qle
    in W m-2. Returns a DataFrame (parameter x flux) in [-1, 1]: the sign says
    whether raising the parameter raises the flux, the size how strongly the
    flux's rank follows the parameter's. Members with a NaN output are dropped.
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr

    x = np.asarray(params_unit, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"params_unit: expected shape (members, {len(names)}), got {x.shape}")
    table = {}
    for flux, y in outputs.items():
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"outputs[{flux!r}]: {y.shape[0]} members, parameters have {x.shape[0]}")
        ok = np.isfinite(y)
        col = []
        for j in range(x.shape[1]):
            xj, yj = x[ok, j], y[ok]
            if ok.sum() < 3 or np.ptp(xj) == 0 or np.ptp(yj) == 0:
                col.append(np.nan)
            else:
                col.append(float(spearmanr(xj, yj).statistic))
        table[flux] = col
    return pd.DataFrame(table, index=pd.Index(list(names), name="parameter"))


def observed_daily(features, flux: str):
    """Daily mean observed ``flux`` of one :class:`~mdpl.data.features.SiteFeatures` on measured days, NaN elsewhere."""
    import numpy as np
    import pandas as pd

    vals = np.where(features.obs_mask[flux], features.obs[flux], np.nan).astype(float)
    return pd.Series(vals, index=features.days, name=flux)


# --------------------------------------------------------------------------- chapter 7: physical sense

def bound_hits(learned_unit, *, tol: float = 0.02):
    """Parameters that calibration pushed to within ``tol`` of a bound (unit-cube values).

    Returns a DataFrame with one row per (site, parameter, bound); a parameter
    pinned at a bound suggests the bounds (or the model structure) limit the
    fit, which a physically sensible calibration should rarely need.
    """
    import pandas as pd

    rows = []
    for site, row in learned_unit.iterrows():
        for name, u in row.items():
            if u <= tol:
                rows.append({"site": site, "parameter": name, "bound": "lower", "position": float(u)})
            elif u >= 1 - tol:
                rows.append({"site": site, "parameter": name, "bound": "upper", "position": float(u)})
    return pd.DataFrame(rows, columns=["site", "parameter", "bound", "position"])


def forcing_monthly(ds):
    """Monthly mean forcing of one site in familiar units: a DataFrame indexed by month.

    Columns: ``SWdown (W m-2)``, ``Tair (degC)``, ``precipitation (mm d-1)``
    (rain + snow), ``Wind (m s-1)``; from :func:`mdpl.data.aggregate.monthly`.
    """
    import pandas as pd

    from mdpl.data.aggregate import monthly

    m = monthly(ds)
    precip = m["Rainf"].values + (m["Snowf"].values if "Snowf" in m else 0.0)
    return pd.DataFrame({
        "SWdown (W m-2)": m["SWdown"].values,
        "Tair (degC)": m["Tair"].values - 273.15,
        "precipitation (mm d-1)": precip * 86400.0,
        "Wind (m s-1)": m["Wind"].values,
    }, index=pd.DatetimeIndex(m["time"].values, name="month"))


# --------------------------------------------------------------------------- chapter 2: ensemble

def ensemble_sensitivity(store, fluxes: Sequence[str] = ("Qle", "Qh", "NEE")) -> dict:
    """Per flux, a (parameter x site) table of Spearman correlations of the member-mean flux with each parameter.

    ``store`` is an :class:`mdpl.ensemble.EnsembleStore` (or anything with
    ``sites``, ``params`` (site, member, P), ``daily[flux]`` (site, member,
    day), ``n_days`` and ``space.names``). Members that were not run (NaN) are
    dropped.
    """
    import numpy as np
    import pandas as pd

    names = list(store.space.names)
    out = {}
    for flux in fluxes:
        if flux not in store.daily:
            continue
        cols = {}
        for i, site in enumerate(store.sites):
            series = store.daily[flux][i, :, : int(store.n_days[i])].astype(float)
            count = np.isfinite(series).sum(axis=1)
            mean = np.where(count > 0, np.nansum(series, axis=1) / np.maximum(count, 1), np.nan)
            params = store.params[i]
            ok = np.isfinite(params).all(axis=1) & np.isfinite(mean)
            cols[site] = parameter_sensitivity(params[ok], {flux: mean[ok]}, names)[flux]
        out[flux] = pd.DataFrame(cols)
    return out


def top_parameters(sensitivity, n: int = 3) -> list[tuple[str, float]]:
    """The ``n`` parameters with the largest mean absolute sensitivity across sites, with that value."""
    mean_abs = sensitivity.abs().mean(axis=1, skipna=True).sort_values(ascending=False)
    return [(str(k), float(v)) for k, v in mean_abs.head(n).items()]


# --------------------------------------------------------------------------- chapter 4: series from a study

def period_series(series, flux: str, sources: Sequence[str], period: str = "test"):
    """Daily observed and simulated ``flux`` of one site in one period, from ``StudyResult.series(site)``.

    Returns ``(obs, {source: sim})`` as pandas Series indexed by day; obs is
    NaN on days not measured, everything is NaN outside ``period`` ('train',
    'test' or 'all'). Sources without a simulation in ``series`` are skipped.
    """
    import numpy as np
    import pandas as pd

    days = pd.DatetimeIndex(series["day"].values)
    in_period = np.ones(len(days), bool) if period == "all" else series[period].values.astype(bool)
    measured = series[f"obs_{flux}_measured"].values.astype(bool)
    obs = pd.Series(np.where(in_period & measured, series[f"obs_{flux}"].values, np.nan), index=days, name="observed")
    sims = {}
    for src in sources:
        name = f"sim_{src}_{flux}"
        if name in series:
            sims[src] = pd.Series(np.where(in_period, series[name].values, np.nan), index=days, name=src)
    return obs, sims


def monthly_series(series, flux: str, sources: Sequence[str], period: str = "test", min_days: int | None = None):
    """Monthly means of obs and each simulation over the measured days of ``period`` (the same days for all).

    Months with fewer than ``min_days`` such days (default: the evaluation's
    ``MIN_DAYS_PER_MONTH``) are dropped, as in the monthly scores.
    """
    import pandas as pd

    from mdpl.calibrate.evaluation import MIN_DAYS_PER_MONTH

    min_days = MIN_DAYS_PER_MONTH if min_days is None else min_days
    obs, sims = period_series(series, flux, sources, period)
    use = obs.notna()
    frame = pd.DataFrame({"observed": obs, **sims})[use]
    if frame.empty:
        return frame["observed"], {k: frame[k] for k in sims}
    g = frame.groupby(frame.index.to_period("M"))
    m = g.mean()[g.size() >= min_days]
    m.index = m.index.to_timestamp()
    return m["observed"], {k: m[k] for k in sims}


def taylor_points(series, flux: str, sources: Sequence[str], period: str = "test") -> dict:
    """``{source: taylor_stats}`` of each source against the observations on the measured days of ``period``."""
    from mdpl.evaluate.metrics import taylor_stats

    obs, sims = period_series(series, flux, sources, period)
    return {src: taylor_stats(obs.to_numpy(), sim.to_numpy()) for src, sim in sims.items()}


# --------------------------------------------------------------------------- chapter 3: surrogates

def fidelity_table(surrogates: Mapping[str, Any], store):
    """:func:`mdpl.calibrate.fidelity.fidelity_report` of each surrogate (name -> surrogate), one tidy table.

    Adds a ``surrogate`` column; the per-report ``attrs`` (worst cases) are
    dropped so the reports concatenate.
    """
    import pandas as pd

    from mdpl.calibrate.fidelity import fidelity_report

    frames = []
    for kind, sur in surrogates.items():
        rep = fidelity_report(sur, store)
        rep = pd.DataFrame(rep.to_dict("list"))
        rep["surrogate"] = kind
        frames.append(rep)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --------------------------------------------------------------------------- chapters 4-7: which period

def evaluation_period(records, *, min_n: int = 10) -> tuple[str, str]:
    """The period the chapters score on, and a sentence saying why.

    'test' (the held-out period) when every site has at least ``min_n``
    measured test days of Qle; otherwise 'train', with a note that the record
    is too short to hold days out (tiny test studies).
    """
    r = records[(records["flux"] == "Qle") & (records["scale"] == "daily") & (records["period"] == "test")]
    if len(r) and r.groupby("site")["n"].max().min() >= min_n:
        return "test", ("Scores are on the held-out test period, which calibration never saw (the last year "
                        "where a site has two or more, else held-out blocks of four weeks).")
    return "train", ("This study's records are too short to hold days out, so scores here are on the calibration "
                     "period itself and measure fit, not prediction.")


def metric_table(records, *, metric: str, period: str, scale: str = "daily", fluxes=("Qle", "Qh"),
                 sources: Sequence[str] | None = None):
    """Pivot of one metric: rows (site, flux), columns source (in ``sources`` order when given)."""
    r = records[(records["period"] == period) & (records["scale"] == scale) & records["flux"].isin(list(fluxes))]
    table = r.pivot_table(index=["site", "flux"], columns="source", values=metric, aggfunc="first")
    if sources is not None:
        table = table[[s for s in sources if s in table.columns]]
    return table


def win_rates(records, *, period: str, source: str = "mdpl", baseline: str = "default",
              fluxes=("Qle", "Qh"), metrics=("rmse", "r", "nse", "kge"), scales=("daily", "monthly")):
    """Share (%) of (site, flux) pairs where ``source`` beats ``baseline``, per metric and scale.

    "Beats" follows :data:`mdpl.evaluate.metrics.BETTER`: lower RMSE, higher
    R/NSE/KGE. Pairs where either value is NaN do not count. Returns a
    DataFrame (metric x scale) of percentages and one of pair counts.
    """
    import numpy as np
    import pandas as pd

    from mdpl.evaluate.metrics import BETTER

    rates, counts = {}, {}
    for scale in scales:
        r = records[(records["period"] == period) & (records["scale"] == scale) & records["flux"].isin(list(fluxes))]
        wide = {m: r.pivot_table(index=["site", "flux"], columns="source", values=m, aggfunc="first") for m in metrics}
        rates[scale], counts[scale] = {}, {}
        for m, t in wide.items():
            if source not in t or baseline not in t:
                rates[scale][m], counts[scale][m] = np.nan, 0
                continue
            a, b = t[source], t[baseline]
            ok = a.notna() & b.notna()
            wins = (a[ok] < b[ok]) if BETTER[m] < 0 else (a[ok] > b[ok])
            rates[scale][m] = 100.0 * float(wins.mean()) if ok.any() else np.nan
            counts[scale][m] = int(ok.sum())
    return pd.DataFrame(rates), pd.DataFrame(counts)


def learned_unit_positions(calibration, space):
    """(site x parameter) positions of a :class:`CalibrationResult`'s parameters in ``space``'s unit cube."""
    import numpy as np
    import pandas as pd

    idx = [calibration.param_names.index(n) for n in space.names]
    u = np.asarray(space.to_unit(np.asarray(calibration.params, float)[:, idx]), float)
    return pd.DataFrame(u, index=list(calibration.sites), columns=list(space.names))


# --------------------------------------------------------------------------- chapter 5: benchmark

def benchmark_table(out_dir) -> tuple[Any, bool]:
    """The ranked benchmark table of a study directory, and whether it holds outside models.

    ``out_dir/benchmark/benchmark.csv`` (written by ``mdpl book`` or
    ``mdpl benchmark --study``) when present; otherwise the study's own
    parameter sources only (:func:`mdpl.baselines.table.study_rows`), ranked
    with :func:`mdpl.evaluate.tables.rank_table`.
    """
    import pandas as pd

    from mdpl.baselines.table import study_rows
    from mdpl.evaluate.tables import rank_table, tidy

    csv = Path(out_dir) / "benchmark" / "benchmark.csv"
    if csv.is_file():
        return pd.read_csv(csv), True
    return rank_table(tidy(study_rows(out_dir))), False


def select_sites(available: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The sites a chapter shows: ``wanted`` (the notebook's ``sites`` parameter) in study order, or all.

    A wanted site the study does not have is a :class:`mdpl.ConfigError` naming it.
    """
    from mdpl.errors import ConfigError

    if not wanted:
        return list(available)
    missing = [s for s in wanted if s not in available]
    if missing:
        raise ConfigError(f"site(s) {', '.join(missing)} not in this study (it has {', '.join(available)})")
    return [s for s in available if s in set(wanted)]


# --------------------------------------------------------------------------- chapter 6: transfer

def transfer_table(study_records, transfer_records, *, metric: str = "kge", period: str, scale: str = "daily",
                   fluxes=("Qle", "Qh"), sources=("default", "mdpl", "loso")):
    """Rows (PFT group, site) of the left-out sites, columns (flux, source): one metric, one period and scale.

    ``mdpl`` is the site's own calibration; ``loso`` the parameters transferred
    from the other sites of its PFT group.
    """
    import pandas as pd

    if transfer_records is None or len(transfer_records) == 0:
        return pd.DataFrame()
    sites = set(transfer_records["site"])
    r = pd.concat([study_records[study_records["site"].isin(sites)], transfer_records], ignore_index=True)
    r = r[(r["period"] == period) & (r["scale"] == scale) & r["flux"].isin(list(fluxes)) & r["source"].isin(list(sources))]
    table = r.pivot_table(index=["pft_group", "site"], columns=["flux", "source"], values=metric, aggfunc="first")
    cols = [(f, s) for f in fluxes for s in sources if (f, s) in table.columns]
    return table[cols]


def merged_series(study_series, transfer_series):
    """A study's daily series of one site with the transferred run (``sim_loso_*``) added."""
    import xarray as xr

    return xr.merge([study_series, transfer_series], join="left")
