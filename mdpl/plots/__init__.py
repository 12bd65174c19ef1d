"""Figures for the book: every function returns ``(fig, ax)`` (or ``(fig, axes)``).

- :func:`taylor_diagram` / :func:`taylor_diagram_from_series`: SD, R and centred RMSE in one picture
- :func:`plot_series` / :func:`plot_series_grid`: observed vs modelled fluxes at daily or monthly scale
- :func:`plot_band`: ensemble spread (quantile band and median) against observations
- :func:`heatmap`: annotated colour grid of a small table (e.g. sensitivities)
- :func:`parameter_strip`: learned parameters inside their bounds, against PFT defaults
- :func:`scatter_compare`: predicted vs reference with the 1:1 line and R²
- :func:`sensitivity_grid`: total-order Sobol indices, parameter x site, one panel per flux
- :func:`site_map`: site locations on a latitude/longitude frame, coloured by PFT group
- :func:`metric_bars`, :func:`styled_table`, :func:`text_table`: metric tables as bars and readable tables
"""

from mdpl.plots.bars import metric_bars, styled_table, text_table
from mdpl.plots.heatmap import heatmap
from mdpl.plots.params import parameter_strip
from mdpl.plots.scatter import scatter_compare
from mdpl.plots.sensitivity import sensitivity_grid
from mdpl.plots.series import plot_band, plot_lines, plot_series, plot_series_grid
from mdpl.plots.sitemap import site_map
from mdpl.plots.style import STYLES, style_for
from mdpl.plots.taylor import TAYLOR_HOWTO, taylor_coords, taylor_diagram, taylor_diagram_from_series

__all__ = [
    "STYLES",
    "TAYLOR_HOWTO",
    "heatmap",
    "metric_bars",
    "parameter_strip",
    "plot_band",
    "plot_lines",
    "plot_series",
    "plot_series_grid",
    "scatter_compare",
    "sensitivity_grid",
    "site_map",
    "style_for",
    "styled_table",
    "taylor_coords",
    "taylor_diagram",
    "taylor_diagram_from_series",
    "text_table",
]
