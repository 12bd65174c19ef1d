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
# # 6. Transferability: leave one site out within each PFT group
#
# ## Overview
#
# Paper experiment 4. Site-specific calibration needs a flux tower at the
# site. Can parameters learned at *other* sites of the same plant functional
# type stand in? For every PFT group with at least two sites and every site in
# it, two generators are trained through the frozen multi-task surrogate on
# the other sites of the group only (`mdpl.transfer`):
#
# - `loso`, the paper's PFT-set transfer: one parameter set for the group;
# - `loso_own`, the generator's own-inputs transfer: one generator for the
#   other sites (`calibration.mode: all`), applied to the left-out site's own
#   forcing summary, attributes and PFT defaults.
#
# The land model then runs at the left-out site with both sets, next to its
# own site-specific MdPL calibration (`mdpl`) and the PFT defaults
# (`default`). The left-out site's observations are never used in training.
# With two sites in a group, each generator learns from a single site.
#
# ## What you need
#
# A finished study in `out_dir` with at least two sites in one PFT group;
# `mdpl book` runs the transfer experiment into `out_dir/transfer/`.

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

# %%
from mdpl import plots
from mdpl.calibrate.series import merged_series, monthly_series
from mdpl.evaluate.records import evaluation_period, transfer_table
from mdpl.presentation import Captions, data_banner, select_sites, show_markdown, study_source
from mdpl.study import load_study
from mdpl.transfer import load_transfer

study = load_study(out_dir)
shown = select_sites(study.sites, sites)
show_markdown(data_banner(study_source(study), shown))
cap = Captions(6)
transfer, transfer_series = load_transfer(out_dir)
transfer = transfer[transfer["site"].isin(shown)] if len(transfer) else transfer
left_out = [s for s in shown if s in set(transfer["site"])] if len(transfer) else []
period, why = evaluation_period(study.records)
show_markdown(why + (f" Sites left out in turn: {', '.join(left_out)}." if left_out else
                     " No PFT group of this study has two or more of the sites shown, so nothing could be left out."))

# %% [markdown]
# ## The figures and tables

# %%
SOURCES = ("default", "mdpl", "loso", "loso_own")
WHAT = ("PFT defaults, the site's own MdPL calibration, the PFT set transferred from the other sites of its group "
        "(loso) and the other sites' generator applied to the site's own inputs (loso_own)")
for scale in ("daily", "monthly"):
    kge = transfer_table(study.records, transfer, metric="kge", period=period, scale=scale, sources=SOURCES)
    if len(kge):
        cap.table(plots.styled_table(kge, caption=f"KGE, {scale}, {period} period", decimals=2, separate_level=0),
                  f"Kling-Gupta efficiency of the land model at each left-out site ({scale} means, {period} period): "
                  f"{WHAT}. 1 is perfect; below -0.41 is worse than the observed mean. Thick rules separate PFT "
                  "groups.", units="dimensionless")
rmse = transfer_table(study.records, transfer, metric="rmse", period=period, scale="daily", sources=SOURCES)
if len(rmse):
    cap.table(plots.styled_table(rmse, caption=f"RMSE, daily, {period} period", decimals=1, separate_level=0),
              f"Root mean square error of daily means at each left-out site ({period} period): {WHAT}. Lower is "
              "better.", units="W m-2")

# %%
for flux in ("Qh", "Qle"):
    panels = {site: monthly_series(merged_series(study.series(site), transfer_series[site]), flux,
                                   list(SOURCES), "all") for site in left_out}
    if panels:
        fig, axes = plots.plot_series_grid(panels, var=flux, units="W m-2", scale="monthly")
        cap.figure(fig, f"Monthly mean {flux} at each left-out site over its whole record: the tower (black), the "
                        f"{WHAT}, in W m-2, on measured days only.")

# %% [markdown]
# ## What it shows

# %%
kge = transfer_table(study.records, transfer, metric="kge", period=period, scale="daily", sources=SOURCES)
lines = []
groups = sorted(set(transfer["pft_group"])) if len(transfer) else []
if groups:
    lines.append(f"Groups left out in turn: {len(groups)} ({', '.join(groups)}), {len(left_out)} sites.")
for flux in ("Qle", "Qh"):
    for src, name in (("loso", "the PFT set"), ("loso_own", "the own-inputs generator")):
        if (flux, src) in kge.columns and (flux, "default") in kge.columns:
            d = kge[(flux, src)] - kge[(flux, "default")]
            gap = kge[(flux, "mdpl")] - kge[(flux, src)] if (flux, "mdpl") in kge.columns else None
            lines.append(f"- **{flux}**, {name}: beats the PFT defaults by KGE at {int((d > 0).sum())} of "
                         f"{int(d.notna().sum())} left-out sites (mean change {d.mean():+.2f})"
                         + (f"; the site's own calibration is better by {gap.mean():+.2f} KGE on average"
                            if gap is not None and gap.notna().any() else "") + ".")
show_markdown("\n".join(lines) if lines else "No transfer results to summarise.")

# %% [markdown]
# ## What comes next
#
# Chapter 7 goes beyond the paper: NEE, the physical sense of the learned
# parameters and the robustness of the improvement across metrics.
