"""How the book's pages present results: parameters, the data banner, numbered captions, numbers put into words.

- :func:`notebook_config` / :func:`select_sites`: a chapter's papermill parameters
- :func:`data_banner` / :func:`study_source`: the "synthetic" / "real data" notice on every page
- :class:`Captions`: numbered figure and table captions (tables must state their units)
- :func:`describe_change`: RMSE and R changes put into words, with which direction is better

The science these pages show lives in the packages (:mod:`mdpl.data.summary`,
:mod:`mdpl.evaluate`, :mod:`mdpl.calibrate.series`, ...); nothing here computes a result.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from mdpl.config import Config, load_config
from mdpl.errors import ConfigError


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


def select_sites(available: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """The sites a chapter shows: ``wanted`` (the notebook's ``sites`` parameter) in study order, or all.

    A wanted site the study does not have is a :class:`mdpl.ConfigError` naming it.
    """
    if not wanted:
        return list(available)
    missing = [s for s in wanted if s not in available]
    if missing:
        raise ConfigError(f"site(s) {', '.join(missing)} not in this study (it has {', '.join(available)})")
    return [s for s in available if s in set(wanted)]


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
