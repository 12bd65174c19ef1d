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
# # 4. Site-specific calibration: default, dPL, MdPL and direct
#
# ## Overview
#
# Paper experiment 1. One parameter generator, shared by all sites, learns
# each site's parameters from that site's forcing and attributes; the land
# model is then rerun with them and compared with the tower. Four parameter
# sources compete:
#
# - **default**: the land model's per-IGBP table (no calibration);
# - **dPL**: generator trained through the single-task surrogates {cite:p}`tsai2021dpl`;
# - **MdPL**: generator trained through the multi-task surrogate {cite:p}`xie2025mdpl`;
# - **direct**: generator trained through the differentiable land model itself (no surrogate).
#
# Whatever route found the parameters, the verdict comes from the land model.
#
# ## What you need
#
# A finished study in `out_dir` (read only).

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
# Load the study: metric records, daily series of every parameter source,
# and the calibrations' costs.

# %%
import matplotlib.pyplot as plt
import pandas as pd

from mdpl import plots
from mdpl.calibrate.series import monthly_series, period_series, taylor_points
from mdpl.evaluate.records import evaluation_period, metric_table
from mdpl.presentation import Captions, data_banner, describe_change, select_sites, show_markdown, study_source
from mdpl.study import load_study

study = load_study(out_dir)
shown = select_sites(study.sites, sites)
records = study.records[study.records["site"].isin(shown)]
show_markdown(data_banner(study_source(study), shown))
cap = Captions(4)
order = ["default", "dpl", "mdpl", "direct", "classical"]
sources = [s for s in order if s in set(records["source"])]
period, why = evaluation_period(records)
series = {site: study.series(site) for site in shown}
show_markdown(why)

# %% [markdown]
# ## The figures and tables

# %%
rmse = metric_table(records, metric="rmse", period=period, sources=sources)
cap.table(plots.styled_table(rmse, caption=f"Daily RMSE, {period} period", decimals=1, highlight="min"),
          f"Root mean square error of daily mean latent (Qle) and sensible (Qh) heat against the tower, "
          f"{period} period, measured days only; lower is better, the best source per row in bold.",
          units="W m-2")

# %%
corr = metric_table(records, metric="r", period=period, sources=sources)
cap.table(plots.styled_table(corr, caption=f"Daily correlation R, {period} period", decimals=2, highlight="max"),
          f"Pearson correlation of daily means with the tower, {period} period; higher is better, the best source "
          "per row in bold.", units="dimensionless")

# %%
show_markdown(plots.TAYLOR_HOWTO)

# %%
for flux in ("Qle", "Qh"):
    n = len(shown)
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 4.4), squeeze=False)
    for k, (ax, site) in enumerate(zip(axes[0], shown)):
        pts = taylor_points(series[site], flux, sources, period)
        plots.taylor_diagram(pts, ax=ax, title=f"{site}: {flux}", arrows=[("default", "mdpl")], legend=k == 0)
    fig.tight_layout()
    cap.figure(fig, f"Taylor diagrams of daily {flux} ({period} period), one per site. Markers: parameter sources "
                    "(legend); black star: the observations; the arrow runs from the default parameters to MdPL. "
                    "Dashed green circles: centred RMSE divided by the observed standard deviation (smaller is "
                    "better); grey rays: correlation R (towards the horizontal axis is better).")
    b = records[(records.period == period) & (records.scale == "daily") & (records.flux == flux)]
    words = []
    for site in shown:
        g = b[b.site == site].set_index("source")
        if {"default", "mdpl"} <= set(g.index):
            words.append(f"- **{site}**: " + describe_change(g.loc["default"], g.loc["mdpl"], flux=flux, units="W m-2"))
        if {"dpl", "mdpl"} <= set(g.index):
            words.append("  Against single-task dPL: " + describe_change(g.loc["dpl"], g.loc["mdpl"], flux=flux,
                                                                         units="W m-2", before_label="dPL"))
    show_markdown(f"What changed for {flux}, in words:\n\n" + "\n".join(words))

# %%
for flux in ("Qle", "Qh"):
    panels = {site: period_series(series[site], flux, sources, period) for site in shown}
    fig, axes = plots.plot_series_grid(panels, var=flux, units="W m-2", scale="daily")
    cap.figure(fig, f"Daily mean {flux} at each site over the {period} period: tower observations on measured days "
                    "(black; gaps are days with too few measured half-hours) and the land model with each parameter "
                    "source (W m-2).")

# %%
for flux in ("Qle", "Qh"):
    panels = {site: monthly_series(series[site], flux, sources, "all") for site in shown}
    fig, axes = plots.plot_series_grid(panels, var=flux, units="W m-2", scale="monthly")
    cap.figure(fig, f"Monthly mean {flux} over each site's whole record (calibration and test periods), computed "
                    "from the measured days only (the same days for the tower and every model run; months with fewer "
                    "than 10 such days are left out), in W m-2.")

# %%
cost = pd.DataFrame([{"source": s, "wall time (s)": c.wall_s, "land-model runs": c.n_model_evals,
                      "surrogate runs": c.n_surrogate_evals} for s, c in study.calibrations.items()]).set_index("source")
cap.table(cost, "What each calibration cost: wall-clock time on this machine, runs of the land model over a site's "
                "calibration window and runs of the surrogate.", units="s for wall time; counts for runs")

# %% [markdown]
# ### Can the result be believed?
#
# A better score can come from the wrong reason. For each route: at how
# many sites both fluxes improve, whether NEE (never calibrated) is kept,
# and how many of the parameters calibration moved end on a wall of their
# box (within 2 %, a sign that the parameters absorb a model or data error).
# With several seeds (`calibration.seeds`), the same counts per seed show
# whether a gain survives retraining the surrogate and the generator.

# %%
cred = study.credibility()
if len(cred):
    cap.table(cred.set_index("source"), f"Credibility of each calibration, daily, {period} period: sites where both "
              "Qle and Qh beat the defaults, mean RMSE change of the two (%), sites where NEE is not worse than with "
              "the defaults by more than 10 %, and per site the moved parameters within 2 % of a bound.",
              units="counts of sites; % for the change; parameters per site")
by_seed = study.credibility_by_seed()
if len(by_seed):
    spread = by_seed.groupby("source")[["both_better", "mean_rmse_change_pct", "nee_kept", "at_bound_per_site"]]
    cap.table(pd.concat({"mean": spread.mean(), "min": spread.min(), "max": spread.max()}, axis=1),
              f"The same counts over {by_seed.seed.nunique()} seeds of the surrogate and the generator (one "
              "ensemble): mean, smallest and largest.", units="as above")
sel = [r for src in ("mdpl", "dpl") if src in study.calibrations
       for r in study.calibrations[src].info.get("selection", [])]
if sel:
    sel = pd.DataFrame(sel)
    kept = sel[sel.chosen == "default"]
    show_markdown(f"The land-model check (generator checkpoints and the PFT defaults run through the land model, the "
                  f"lowest training loss kept) kept the defaults at {len(kept)} of {len(sel)} site-route pairs"
                  + (": " + ", ".join(f"{r.site} ({r.source})" for r in kept.itertuples()) if len(kept) else "") + ".")
if study.warnings:
    show_markdown("**Warnings of this study:**\n\n" + "\n".join(f"- {w}" for w in study.warnings))

# %% [markdown]
# ## What it shows

# %%
summary = study.summary(period=period, scale="daily", source="mdpl", baseline="default")
summary = summary[summary["site"].isin(shown)] if len(summary) else summary
lines = []
if len(summary):
    for flux in ("Qle", "Qh"):
        s = summary[summary.flux == flux]
        if len(s):
            better = int((s["rmse_mdpl"] < s["rmse_default"]).sum())
            lines.append(f"- **{flux}**: MdPL lowers the daily RMSE against the default parameters at {better} of "
                         f"{len(s)} sites; mean change {s['rmse_change_pct'].mean():+.1f} % (the paper reports "
                         "about -15 %).")
show_markdown("\n".join(lines) if lines else "No MdPL calibration in this study.")

# %% [markdown]
# ## What comes next
#
# Chapter 5 puts these runs next to established land models and empirical
# benchmarks; chapter 6 asks whether parameters learned at some sites serve
# others of the same PFT group.
