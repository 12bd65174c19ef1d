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
# # 5. Benchmark against established models
#
# ## Overview
#
# Paper experiment 3. How does the calibrated land model compare with models
# the community already runs at these towers? PLUMBER2 {cite:p}`ukkola2022plumber2`
# scored established land surface models (here JULES and ecLand) on every
# site, and PLUMBER {cite:p}`best2015plumber,abramowitz2012benchmark` showed
# that simple empirical models set a surprisingly high bar: `1lin` (a linear
# regression of each flux on shortwave radiation) and `3km27` (a regression on
# radiation, temperature and humidity within 27 clusters of the forcing),
# both trained on other sites. An LSTM trained on the tower observations
# themselves is the purely statistical competitor (per site, and
# leave-one-site-out).
#
# Models are ranked only within comparable groups: the same site, flux, time
# scale and scoring basis (held-out period; or PLUMBER2's basis: the whole
# record, measured half-hours, against the uncorrected fluxes).
#
# ## What you need
#
# A finished study in `out_dir`. The outside models need real tower data:
# `mdpl book` then writes `benchmark/benchmark.csv` into the study directory
# (as `mdpl benchmark --study DIR` does); otherwise this chapter ranks the
# study's own parameter sources only.

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
import matplotlib.pyplot as plt

from mdpl import plots
from mdpl.evaluate.ranking import ranking_figure
from mdpl.evaluate.tables import mean_rank
from mdpl.baselines.table import benchmark_table
from mdpl.presentation import Captions, data_banner, select_sites, show_markdown, study_source
from mdpl.study import load_study

study = load_study(out_dir)
shown = select_sites(study.sites, sites)
show_markdown(data_banner(study_source(study), shown))
cap = Captions(5)
table, external = benchmark_table(out_dir)
table = table[table["site"].isin(shown)]
scored = table[table["rank"].notna()]
comparisons = [c for c in ("held_out", "plumber2_basis", "training") if c in set(scored["comparison"])]
show_markdown(
    "Models compared: " + ", ".join(f"`{m}`" for m in sorted(table["model"].unique())) + "."
    + ("" if external else " Only the study's own parameter sources are ranked here: the PLUMBER2 peers, the "
       "empirical benchmarks and the LSTM were scored against real towers, and this study did not run on them.")
)

# %% [markdown]
# ## The figures and tables

# %%
include = tuple(c for c in ("plumber2_basis", "held_out") if c in comparisons) or ("training",)
fig, axes = ranking_figure(scored, include=include)
cap.figure(fig, "Rank of every model by RMSE within each comparable group (rows: sites; 1 = lowest RMSE, green), "
                "one panel per flux, time scale and scoring basis; the numbers are the RMSE (W m-2 for Qle and Qh, "
                "umol m-2 s-1 for NEE).")

# %%
mr = mean_rank(scored)
mr = mr[mr["comparison"].isin(include)].set_index(["comparison", "scale", "flux", "model"]).sort_index()
cap.table(plots.styled_table(mr, caption="Mean rank by RMSE", decimals=2),
          "Mean rank of each model over the sites it was scored at (1 = best), number of sites and mean RMSE, per "
          "scoring basis, time scale and flux; rules separate the scoring bases.",
          units="rank and sites dimensionless; mean RMSE in W m-2 (Qle, Qh) or umol m-2 s-1 (NEE)")

# %%
# Side by side at every tower: half-hourly RMSE on PLUMBER2's basis (whole record, measured steps, uncorrected
# fluxes: the basis of the peers' published numbers) and daily RMSE on the held-out basis.
import pandas as pd

side = []
for comp, scale in (("plumber2_basis", "halfhourly"), ("held_out", "daily")):
    sub = scored[(scored["comparison"] == comp) & (scored["scale"] == scale) & scored["flux"].isin(["Qle", "Qh"])]
    if len(sub):
        t = sub.pivot_table(index=["flux", "site"], columns="model", values="rmse", aggfunc="first")
        t.columns = pd.MultiIndex.from_product([[f"{comp.replace('_', ' ')}, {scale}"], t.columns])
        side.append(t)
if side:
    both = pd.concat(side, axis=1)
    cap.table(plots.styled_table(both, caption="RMSE by basis", decimals=1, separate_level=0),
              "RMSE of every model at every tower on PLUMBER2's basis (half-hourly, whole record, measured steps, "
              "uncorrected fluxes) and on the held-out basis (daily means of measured days in the held-out period); "
              "empty cells: the model was not scored on that basis there. Thick rules separate the fluxes.",
              units="W m-2")
basis_rows = scored[scored["comparison"] == "plumber2_basis"]
in_sample = sorted(set(basis_rows.loc[basis_rows["sample"] == "in", "model"]))
if in_sample:
    towers = sorted(set(basis_rows.loc[basis_rows["sample"] == "in", "site"]))
    show_markdown(
        ":::{admonition} In-sample on PLUMBER2's basis\n:class: caution\n"
        f"The whole record of every tower here ({', '.join(towers)}) includes the period "
        f"{', '.join(in_sample)} were calibrated on (the training years, or the training weeks of one-year records), "
        "so their PLUMBER2-basis rows are in-sample (`sample = in`) and flatter them. The defaults, the peers (JULES, "
        "ecLand), 1lin and 3km27 never saw these towers' fluxes. The held-out basis is the fair comparison for the "
        "calibrated sources.\n:::")
elif len(basis_rows):
    show_markdown("On PLUMBER2's basis only models that never saw these towers' fluxes are ranked here.")

# %%
daily = scored[(scored["scale"] == "daily") & scored["flux"].isin(["Qle", "Qh"])]
if len(daily):
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), squeeze=False)
    for ax, flux in zip(axes[0], ["Qle", "Qh"]):
        plots.metric_bars(daily[daily["flux"] == flux], value="kge", x="site", hue="model", ax=ax,
                          title=f"{flux}, daily, {include[0].replace('_', ' ')}")
    fig.tight_layout()
    cap.figure(fig, "Kling-Gupta efficiency of every model at every site, daily scale (dimensionless; 1 is perfect).")

# %% [markdown]
# ## What it shows

# %%
focus = mr.xs("MdPL", level="model") if "MdPL" in mr.index.get_level_values("model") else None
if focus is not None and len(focus):
    n_models = scored.groupby(["comparison", "scale", "flux"])["model"].nunique()
    show_markdown("MdPL's mean rank: " + "; ".join(
        f"{flux} {scale} ({comp.replace('_', ' ')}): {row.mean_rank:.2f} of {n_models.loc[(comp, scale, flux)]}"
        for (comp, scale, flux), row in focus.iterrows()) + ".")
else:
    show_markdown("This study has no MdPL rows to rank.")
hh = scored[(scored["comparison"] == "plumber2_basis") & (scored["scale"] == "halfhourly")]
if len(hh) and "MdPL" in set(hh["model"]):
    beaten = []
    for flux in ("Qle", "Qh"):
        f = hh[hh["flux"] == flux].pivot_table(index="site", columns="model", values="rmse", aggfunc="first")
        for peer in [c for c in f.columns if c not in ("MdPL", "dPL", "default", "direct", "classical")]:
            pair = f[["MdPL", peer]].dropna()
            if len(pair):
                beaten.append(f"{flux} vs {peer}: {int((pair['MdPL'] < pair[peer]).sum())} of {len(pair)}")
    show_markdown("On PLUMBER2's basis (half-hourly, in-sample for MdPL) MdPL has the lower RMSE at: "
                  + "; ".join(beaten) + " towers.")

# %% [markdown]
# ## What comes next
#
# Chapter 6 asks whether parameters learned at some sites of a PFT group
# serve another site of the same group that was never calibrated.
