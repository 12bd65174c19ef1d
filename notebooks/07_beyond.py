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
# # 7. Beyond the paper
#
# ## Overview
#
# Three questions the paper leaves open:
#
# 1. **NEE, a flux nobody calibrated.** Calibration fits latent and sensible
#    heat only. Do the parameters it learns improve, leave alone or damage the
#    modelled carbon exchange?
# 2. **Do the learned parameters make physical sense?** Where do they sit
#    inside their bounds, how far do they move from the PFT defaults, do they
#    pile up on a bound, and do sites of one PFT group agree?
# 3. **Is the improvement robust to how skill is measured?** RMSE, R, NSE and
#    KGE {cite:p}`gupta2009kge` weigh errors differently, and daily and monthly
#    scales reward different things.
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

# %%
from pathlib import Path

import pandas as pd

from mdpl import plots
from mdpl.calibrate.identifiability import held_by_site
from mdpl.ensemble import EnsembleStore
from mdpl.evaluate.parameters import bound_hits, learned_unit_positions
from mdpl.evaluate.records import evaluation_period, metric_table, win_rates
from mdpl.presentation import Captions, data_banner, select_sites, show_markdown, study_source
from mdpl.study import load_study

study = load_study(out_dir)
shown = select_sites(study.sites, sites)
records = study.records[study.records["site"].isin(shown)]
space = EnsembleStore.open(Path(out_dir) / "ensemble").space
show_markdown(data_banner(study_source(study), shown))
cap = Captions(7)
order = ["default", "dpl", "mdpl", "direct", "classical"]
sources = [s for s in order if s in set(records["source"])]
period, why = evaluation_period(records)
igbp = records.drop_duplicates("site").set_index("site")["igbp"].to_dict()
show_markdown(why)

# %% [markdown]
# ## The figures and tables
#
# ### NEE: the uncalibrated flux

# %%
nee = pd.concat({m: metric_table(records, metric=m, period=period, fluxes=("NEE",), sources=sources)
                 for m in ("rmse", "r")}, axis=1)
cap.table(plots.styled_table(nee, caption=f"NEE skill, daily, {period} period", decimals=2),
          "Net ecosystem exchange of the land model with each parameter source against the tower (daily means, "
          "measured days): RMSE (lower is better) and correlation R (higher is better). No source was calibrated "
          "on NEE.", units="RMSE in umol m-2 s-1; R dimensionless")

# %% [markdown]
# ### Which parameter controls which flux where
#
# Before the generator is trained, a Sobol screen through the frozen
# surrogate measures how much of the variance of each flux's calibration
# loss each parameter explains (total-order index ST, interactions
# included). A parameter whose ST stays below the threshold for every
# calibrated flux at a site is left at its PFT default there: the targets
# cannot see it, so only surrogate noise could move it. The land model's own
# ensemble checks the ranking (first-order indices from its runs).
#
# The screen cannot see two parameters that move the targets the same way.
# Where the land model's ensemble shows such a ridge (Vcmax25 against the
# stomatal slope, typically) and moving along it changes NEE, the NEE-heavier
# side is held at its PFT default too (`calibration.ridge_hold`).

# %%
si = study.sensitivity("mdpl")
if len(si):
    si = si[si.site.isin(shown)]
    fig, axes = plots.sensitivity_grid(si, threshold=study.calibrations["mdpl"].info.get("screen_threshold"))
    cap.figure(fig, "Total-order Sobol index of each parameter (rows) for the calibration loss of each flux at each "
                    "site (columns), through the multi-task surrogate. Grey numbers: parameters the screen left at "
                    "their PFT default at that site (below the threshold for Qle and Qh). NEE is shown, not calibrated.")
    fixed = study.calibrations["mdpl"].info.get("fixed_parameters", {})
    agree = study.calibrations["mdpl"].tables.get("sensitivity_agreement")
    ridges = held_by_site(study.calibrations["mdpl"].tables.get("ridges"))
    text = [f"- **{s}**: left at default: {', '.join(v) if v else 'none'}"
            + (f"; of these, on a ridge the targets cannot resolve: {'; '.join(ridges[s])}" if s in ridges else "")
            for s, v in fixed.items() if s in shown]
    if agree is not None and len(agree):
        text.append(f"- Surrogate vs land-model first-order ranking (Spearman, median over sites and fluxes): "
                    f"{agree.spearman_s1.median():.2f}")
    show_markdown("\n".join(text))
else:
    show_markdown("This study ran without the sensitivity screen (`calibration.screen: false`).")

# %% [markdown]
# ### Physical sense of the learned parameters

# %%
learned = {src: learned_unit_positions(c, space).loc[shown] for src, c in study.calibrations.items()}
defaults_unit = pd.DataFrame({s: space.to_unit(space.defaults(igbp[s])) for s in shown}, index=space.names).T
for src in [s for s in ("mdpl", "direct") if s in learned]:
    fig, ax = plots.parameter_strip(learned[src], defaults_unit=defaults_unit, title=f"{src} parameters")
    cap.figure(fig, f"Where the {src} parameters of each site (filled diamonds) sit between the lower (0) and upper "
                    "(1) bound of each parameter, with each site's PFT default (open circle) joined to it by a line: "
                    "the line's length is how far calibration moved the parameter. Log-scaled parameters are placed "
                    "on a log axis.")

# %%
if "mdpl" in study.calibrations:
    c = study.calibrations["mdpl"]
    phys = pd.DataFrame(c.params, index=c.sites, columns=c.param_names).loc[shown].T
    phys.insert(0, "units", c.param_units)
    for s in shown:
        phys[f"{s} default"] = space.defaults(igbp[s])
    cap.table(plots.styled_table(phys.set_index("units", append=True), caption="MdPL parameters and PFT defaults",
                                 decimals=3, separate_level=None),
              "Learned MdPL parameters per site next to each site's PFT default, in physical units.",
              units="in the units column")

# %%
hits = pd.concat([bound_hits(u).assign(source=src) for src, u in learned.items()], ignore_index=True)
if len(hits):
    cap.table(hits.set_index(["source", "site", "parameter"]),
              "Parameters calibration pushed to within 2 % of a bound: the position is in the unit interval of the "
              "bounds (0 = lower, 1 = upper).", units="dimensionless")
else:
    show_markdown("No calibrated parameter ended within 2 % of a bound.")

# %%
twin = Path(out_dir) / "twin_parameters.csv"
if twin.is_file():
    t = pd.read_csv(twin)
    rec = t.groupby(["source", "identifiable"])["unit_error"].agg(["mean", "max", "count"])
    cap.table(rec, "Twin experiment: error of the recovered parameters against the hidden true ones, in the unit "
                   "interval of the bounds, for parameters the fluxes are sensitive to (identifiable) and the rest.",
              units="dimensionless (fraction of the bounds' width); count of site-parameter pairs")

# %% [markdown]
# ### Robustness across metrics and scales

# %%
rates, counts = win_rates(records, period=period, source="mdpl", baseline="default")
cap.table(plots.styled_table(rates, caption="MdPL beats default (% of site-flux pairs)", decimals=0, separate_level=None),
          f"Share of (site, flux) pairs, Qle and Qh, {period} period, where the MdPL run beats the default run by "
          "each metric (lower RMSE; higher R, NSE, KGE) at daily and monthly scale. "
          f"Pairs per cell: {int(counts.max().max())} at most.", units="%")

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(2, 2, figsize=(11, 6.4), squeeze=False)
for i, flux in enumerate(["Qle", "Qh"]):
    for j, scale in enumerate(["daily", "monthly"]):
        sel = records[(records.period == period) & (records.flux == flux) & (records.scale == scale)]
        plots.metric_bars(sel, value="kge", x="site", hue="source", ax=axes[i, j], hue_order=sources,
                          title=f"{flux}, {scale}")
fig.tight_layout()
cap.figure(fig, f"Kling-Gupta efficiency (KGE, dimensionless; 1 is perfect, values below -0.41 are worse than the "
                f"observed mean) of each parameter source at each site, {period} period, for Qle and Qh at daily "
                "and monthly scale.")

# %% [markdown]
# ## What it shows

# %%
lines = []
if {"default", "mdpl"} <= set(nee.columns.get_level_values(1)):
    r = nee["rmse"]
    ok = r["mdpl"].notna() & r["default"].notna()
    lines.append(f"- **NEE**: the MdPL parameters lower the NEE RMSE at {int((r['mdpl'] < r['default'])[ok].sum())} of "
                 f"{int(ok.sum())} sites, although NEE was never a target.")
if learned:
    n_hits = len(hits)
    total = sum(u.size for u in learned.values())
    lines.append(f"- **Bounds**: {n_hits} of {total} learned parameter values lie within 2 % of a bound.")
if rates.notna().any().any():
    lines.append("- **Metrics**: MdPL beats default on " + "; ".join(
        f"{scale} {m.upper()} in {rates.loc[m, scale]:.0f} %" for scale in rates.columns for m in rates.index
        if pd.notna(rates.loc[m, scale])) + " of site-flux pairs.")
show_markdown("\n".join(lines))

# %% [markdown]
# ## What comes next
#
# The reproducibility appendix records the software, hardware, seeds and run
# times of this build; the references list the work this book builds on.
