# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The data and the sites
#
# ## Overview
#
# Every experiment in this book runs on the same set of flux-tower sites. This
# chapter shows which sites they are, which plant functional type (PFT) group
# each belongs to, what weather drives the land model there, what the towers
# measured, and how much of each flux was actually measured rather than
# gap-filled. Only measured steps enter calibration and evaluation.
#
# ## What you need
#
# Nothing beyond `mdpl` itself: with no flux-tower files it runs on the
# embedded synthetic default (synthetic twins of five real PLUMBER2 sites).
# To use real towers, point `MDPL_DATA_DIR` (or the `data_dir` parameter)
# at a directory of PLUMBER2 or PALS ALMA netCDF files
# {cite:p}`ukkola2022plumber2`. On Colab, first run
# `pip install "mdpl[book] @ git+<this repository's URL>"`.

# %% tags=["parameters"]
sites = []  # site codes; empty: every site the configuration finds
mode = "quick"  # quick | full
device = "auto"  # auto | cpu | cuda
data_dir = ""  # empty: $MDPL_DATA_DIR, ../shared/data, else the synthetic default
out_dir = "runs/book-quick"  # study outputs and cache
seed = 0
config = ""  # a study configuration YAML (e.g. the tests' tiny one); empty: defaults for `mode`

# %% [markdown]
# ## The run
#
# Load the sites exactly as the study does (same configuration, same filters).

# %%
import matplotlib.pyplot as plt

from mdpl import plots
from mdpl.data import study_sites
from mdpl.data.features import site_features
from mdpl.calibrate.series import observed_series
from mdpl.data.summary import climate_table, coverage_table, forcing_monthly, sites_table
from mdpl.presentation import Captions, data_banner, notebook_config, show_markdown

cfg = notebook_config(config, mode=mode, seed=seed, device=device, data_dir=data_dir, sites=sites, out_dir=out_dir)
site_data, source = study_sites(cfg)
codes = [ds.attrs["site"] for ds in site_data]
show_markdown(data_banner(source, codes, cfg.data.data_dir))
cap = Captions(1)

# %% [markdown]
# ## The figures and tables

# %%
table = sites_table(site_data)
cap.table(table.set_index(["pft_group", "site"]).drop(columns=["source"]),
          "The study sites, grouped by PFT group: IGBP class, location (latitude in degrees north, longitude in "
          "degrees east), elevation (m above sea level), first and last day, length (years) and time step (minutes).",
          units="as named in each column header")

# %%
fig, ax = plots.site_map(table, title="Study sites by PFT group")
cap.figure(fig, "Where the sites are, coloured by PFT group (longitude in degrees east, latitude in degrees north; "
                "dotted lines mark the tropics). No coastlines are drawn: the frame is the whole globe.")

# %%
clim = climate_table(site_data)
cap.table(plots.styled_table(clim, caption="Mean forcing and measured fluxes per site", decimals=1),
          "Mean forcing over each site's record and mean measured fluxes (gap-filled steps excluded). "
          "Qle: latent heat (evaporation) and Qh: sensible heat, positive upwards; NEE: net ecosystem exchange of "
          "CO2, positive = release to the air.", units="given in each column header")

# %%
monthly_forcing = {ds.attrs["site"]: forcing_monthly(ds) for ds in site_data}
fig, axes = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True)
for ax, column in zip(axes, ["SWdown (W m-2)", "Tair (degC)", "precipitation (mm d-1)"]):
    plots.plot_lines({site: frame[column] for site, frame in monthly_forcing.items()}, ax=ax, ylabel=column)
fig.tight_layout()
cap.figure(fig, "Monthly mean forcing at each site: downward shortwave radiation (W m-2), air temperature (degC) "
                "and precipitation (rain plus snow, mm d-1). Sites cover different years, so their lines sit side "
                "by side in time.")

# %%
cov = coverage_table(site_data)
fig, ax = plots.metric_bars(cov.reset_index().melt(id_vars=["pft_group", "site"], var_name="flux", value_name="measured"),
                            value="measured", x="site", hue="flux", units="% of time steps",
                            title="Measured (not gap-filled) share of each flux")
ax.set_ylim(0, 100)
cap.figure(fig, "Share of time steps at which each flux was measured by the tower rather than gap-filled (%). "
                "Calibration and evaluation use measured steps only; a day counts when at least "
                f"{100 * cfg.data.min_measured_fraction:.0f} % of its steps are measured.")

# %%
panels = {}
for ds in site_data:
    feats = site_features(ds, min_measured_fraction=cfg.data.min_measured_fraction)
    panels[f"{feats.site} ({feats.pft_group})"] = (observed_series(feats, "Qle"), {"Qh": observed_series(feats, "Qh")})
fig, axes = plots.plot_series_grid(panels, var="flux", units="W m-2", scale="daily")
for ax in axes:
    ax.lines[0].set_label("Qle (observed)")
    ax.lines[1].set_label("Qh (observed)")
    ax.legend(fontsize=8, frameon=False, loc="upper left")
cap.figure(fig, "Daily mean measured latent heat (Qle, black) and sensible heat (Qh) at each site (W m-2). "
                "Days with fewer than "
                f"{100 * cfg.data.min_measured_fraction:.0f} % measured steps are left blank: they enter neither "
                "calibration nor evaluation.")

# %% [markdown]
# ## What it shows

# %%
groups = table.groupby("pft_group")["site"].apply(list).to_dict()
low = cov[cov[["Qle", "Qh"]].min(axis=1) < 50]
show_markdown(
    f"The study has **{len(codes)} sites in {len(groups)} PFT groups** "
    + "; ".join(f"{g}: {', '.join(s)}" for g, s in groups.items()) + ". "
    + (f"At {', '.join(s for _, s in low.index)} fewer than half of the Qle or Qh steps were measured, so "
       "their scores rest on fewer days." if len(low) else
       "At every site at least half of the Qle and Qh steps were measured.")
    + (" These are synthetic twins: their 'observations' come from the land model at known parameters plus "
       "noise (the twin experiment), so later chapters can check whether calibration recovers them."
       if source == "synthetic" else "")
)

# %% [markdown]
# ## What comes next
#
# Chapter 2 introduces the land model that turns this forcing into fluxes,
# the parameters a calibration may change, and how strongly each flux
# responds to each parameter.
