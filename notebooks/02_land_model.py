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
# # 2. The land model and its parameter ensemble
#
# ## Overview
#
# The land model behind this study (`mdpl.ils.EmbeddedLSM`) is a big-leaf,
# physically based land surface model written in PyTorch, so it is
# differentiable end to end. Each half-hour it solves the surface energy
# balance for the surface temperature (net radiation = latent + sensible +
# ground heat), computes photosynthesis with the Farquhar model
# {cite:p}`farquhar1980,collatz1991` and stomatal conductance with the
# Ball–Berry model {cite:p}`ball1987`, limits both by soil water stress,
# moves water through layered soil, canopy interception and drainage, and
# respires carbon with a Q10 temperature response, in the spirit of MATSIRO
# {cite:p}`takata2003matsiro`. It returns the latent heat flux (Qle), the
# sensible heat flux (Qh) and the net ecosystem exchange (NEE).
#
# This chapter lists the parameters a calibration may change, their physical
# bounds and their defaults per land-cover class, and shows how strongly each
# flux responds to each parameter across the perturbed parameter ensemble
# from which the surrogates learn.
#
# ## What you need
#
# A finished study in `out_dir` (`mdpl book` or `mdpl calibrate` makes one;
# this notebook only reads it).

# %% tags=["parameters"]
sites = []  # site codes; empty: every site of the study
mode = "quick"  # quick | full
device = "auto"  # auto | cpu | cuda
data_dir = ""  # empty: $MDPL_DATA_DIR, ../shared/data, else the synthetic default
out_dir = "runs/book-quick"  # the study's output directory (read only here)
seed = 0
config = ""  # a study configuration YAML; empty: defaults for `mode`

# %% [markdown]
# ## The run
#
# Load the study and its ensemble (nothing is recomputed here).

# %%
from pathlib import Path

import pandas as pd

from mdpl import plots
from mdpl.ensemble import EnsembleStore
from mdpl.evaluate.sensitivity import ensemble_sensitivity, top_parameters
from mdpl.presentation import Captions, data_banner, select_sites, show_markdown, study_source
from mdpl.study import load_study

study = load_study(out_dir)
store = EnsembleStore.open(Path(out_dir) / "ensemble")
space = store.space
shown = select_sites(store.sites, sites)
show_markdown(data_banner(study_source(study), shown))
cap = Captions(2)

# %% [markdown]
# ## The figures and tables

# %%
bounds = pd.DataFrame(space.table()).set_index("name")
cap.table(bounds[["units", "lower", "upper", "scale", "description"]],
          "The calibrated parameters of the land model with their physical bounds (lower, upper) and the scale "
          "on which samplers and networks see them (log for parameters spanning more than a decade).",
          units="in the units column of each parameter")

# %%
igbp = {site: store.features[site].igbp for site in shown}
defaults = pd.DataFrame({f"{site} ({cls})": space.defaults(cls) for site, cls in igbp.items()}, index=space.names)
cap.table(plots.styled_table(defaults, caption="PFT default parameters per study site", decimals=3, separate_level=None),
          "Default parameters of each study site, taken from the per-IGBP table of the land model (these are the "
          "'default' runs of chapters 4-7). Every value lies inside the bounds of Table 2.1.",
          units="as in Table 2.1")

# %%
import matplotlib.pyplot as plt  # noqa: E402

units = {"Qle": "W m-2", "Qh": "W m-2", "NEE": "umol m-2 s-1"}
fig, axes = plt.subplots(len(shown), 3, figsize=(12, 2.6 * len(shown)), squeeze=False)
for i, site in enumerate(shown):
    f = store.features[site]
    for j, flux in enumerate(["Qle", "Qh", "NEE"]):
        obs = f.obs[flux].astype(float)
        obs[~f.obs_mask[flux]] = float("nan")
        plots.plot_band(f.days, store.member_series(site, flux), obs=obs, ax=axes[i, j], var=flux, units=units[flux])
        axes[i, j].set_title(f"{site}: {flux}", fontsize=9)
fig.tight_layout()
cap.figure(fig, f"The perturbed parameter ensemble ({store.n_members} members per site, {store.manifest['sampler']} "
                "design over the bounds of Table 2.1): daily mean fluxes, 5-95 % band and median of the members "
                "(blue) with the measured daily observations (black). Qle and Qh in W m-2, NEE in umol m-2 s-1. "
                "Calibration can only reach what this band covers.")

# %%
sens = {flux: table[shown] for flux, table in ensemble_sensitivity(store).items()}
fig, axes = plt.subplots(1, len(sens), figsize=(4.2 * len(sens), 0.9 + 0.42 * space.n), squeeze=False)
for ax, (flux, table) in zip(axes[0], sens.items()):
    plots.heatmap(table, ax=ax, title=flux, colorbar_label="Spearman rank correlation")
fig.tight_layout()
cap.figure(fig, "Sensitivity of each flux to each parameter: Spearman rank correlation, across the ensemble "
                "members of each site (columns), between the parameter value and the member's mean daily flux. "
                "+1: raising the parameter always raises the flux; -1: always lowers it; near 0: the flux barely "
                "depends on it (over these bounds, with the other parameters varying too).")

# %% [markdown]
# ## What it shows

# %%
lines = []
for flux, table in sens.items():
    top = top_parameters(table, 3)
    lines.append(f"- **{flux}** responds most to " + ", ".join(f"`{p}` (mean |rho| {v:.2f})" for p, v in top) + ".")
weak = [p for p in space.names if all(sens[f].loc[p].abs().mean() < 0.1 for f in sens)]
show_markdown("\n".join(lines) + "\n\n" + (
    f"Parameters with little influence on any flux here (mean |rho| < 0.1): {', '.join(f'`{p}`' for p in weak)}. "
    "A calibration cannot identify them from these fluxes; their learned values should stay near where the "
    "generator starts and carry little meaning." if weak else
    "Every parameter moves at least one flux noticeably, so each is at least partly identifiable."))

# %% [markdown]
# ## What comes next
#
# Chapter 3 trains the surrogates on this ensemble, one network per flux
# (dPL) and one multi-task network (MdPL), and checks how faithfully they
# reproduce the land model on parameter sets they have not seen.
