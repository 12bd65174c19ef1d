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
# # 3. Surrogates: one network per flux or one for all
#
# ## Overview
#
# Calibration needs gradients of the fluxes with respect to the parameters,
# many thousands of times. A neural surrogate of the land model, trained on
# the perturbed parameter ensemble of chapter 2, provides them cheaply. Two
# designs compete (paper experiment 2):
#
# - **single-task** (the dPL baseline {cite:p}`tsai2021dpl`): one LSTM per
#   flux, each fed the forcing, the parameters and the site attributes;
# - **multi-task** (MdPL): one shared sequence encoder with a day-of-year
#   embedding, shared and flux-specific experts mixed by a gate per flux, and
#   one output tower per flux {cite:p}`ma2018mmoe`.
#
# A surrogate is only useful if it is faithful: this chapter scores both
# against the land model on ensemble members held out from training (the
# target is a daily R² of at least 0.95 for Qle and Qh), shows their training
# curves, and checks the gap between surrogate and land model at the
# parameters calibration actually chose.
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
# Load the study, its ensemble and both trained surrogates; score each
# surrogate on the held-out members (prediction only, no training).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mdpl import plots
from mdpl.calibrate.fidelity import predict_members
from mdpl.calibrate.trained_surrogate import TrainedSurrogate
from mdpl.ensemble import EnsembleStore
from mdpl.calibrate.fidelity import fidelity_table
from mdpl.presentation import Captions, data_banner, select_sites, show_markdown, study_source
from mdpl.study import load_study

study = load_study(out_dir)
store = EnsembleStore.open(Path(out_dir) / "ensemble")
surrogates = {kind: TrainedSurrogate.load(Path(out_dir) / "surrogates" / kind)
              for kind in ("singletask", "multitask") if (Path(out_dir) / "surrogates" / kind).is_dir()}
fidelity = fidelity_table(surrogates, store)
shown = select_sites(store.sites, sites)
show_markdown(data_banner(study_source(study), shown))
cap = Captions(3)

# %% [markdown]
# ## The figures and tables

# %%
pooled = fidelity[fidelity.site == "ALL"].set_index(["flux", "surrogate"]).sort_index()
cap.table(plots.styled_table(pooled[["n_members", "rmse", "r", "r2", "r2_param", "kge"]],
                             caption="Surrogate fidelity on held-out parameter sets", decimals=3),
          "Surrogate against land model, daily means on the ensemble members held out from training, pooled over "
          "sites: RMSE (W m-2 for Qle and Qh, umol m-2 s-1 for NEE), correlation R, R² (1 is perfect; target "
          ">= 0.95 for Qle and Qh), R² of the parameter-driven anomalies (r2_param: how much of the spread between "
          "parameter sets, which calibration relies on, the surrogate captures) and KGE.",
          units="RMSE in the flux's units; n_members a count; the rest dimensionless")

# %%
fig, axes = plt.subplots(1, len(surrogates), figsize=(5 * len(surrogates), 3.4), squeeze=False)
for ax, (kind, s) in zip(axes[0], surrogates.items()):
    h = pd.DataFrame(s.history)
    ax.plot(h["epoch"], h["train_loss"], label="training members")
    ax.plot(h["epoch"], h["val_loss"], label="validation members")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (normalised MSE)")
    ax.set_title(kind)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
fig.tight_layout()
cap.figure(fig, "Training curves: mean squared error in normalised units (each flux standardised by its ensemble "
                "mean and standard deviation, so 1 means no better than the ensemble mean) on the training members "
                "and on the validation members used for early stopping.")

# %%
units = {"Qle": "W m-2", "Qh": "W m-2", "NEE": "umol m-2 s-1"}
tasks = [t for t in ("Qle", "Qh", "NEE") if all(t in s.tasks for s in surrogates.values())]
fig, axes = plt.subplots(len(surrogates), len(tasks), figsize=(3.6 * len(tasks), 3.6 * len(surrogates)), squeeze=False)
for i, (kind, s) in enumerate(surrogates.items()):
    preds = {site: predict_members(s, store, site, s.split[site]["test"]) for site in shown if site in s.split}
    for j, flux in enumerate(tasks):
        ref = np.concatenate([store.member_series(site, flux)[s.split[site]["test"]].ravel() for site in preds])
        pred = np.concatenate([preds[site][flux].ravel() for site in preds])
        plots.scatter_compare(ref, pred, ax=axes[i, j], label="mdpl" if kind == "multitask" else "dpl",
                              units=units[flux], xlabel=f"land model {flux}", ylabel="surrogate", title=kind)
fig.tight_layout()
cap.figure(fig, "Daily fluxes of the surrogates against the land model on held-out ensemble members (the sites shown "
                "pooled; a random subset of points is drawn). Points on the dashed 1:1 line are perfect; the title "
                "gives R² over all pairs.")

# %%
gap = pd.DataFrame(study.surrogate_gap)
if len(gap):
    cap.table(plots.styled_table(gap.set_index(["source", "site", "flux"])[["rmse", "r", "nse", "n"]],
                                 caption="Surrogate vs land model at the calibrated parameters", decimals=3),
              "How far each surrogate is from the land model at the parameters calibration chose with it (daily "
              "means over the whole record). A large gap means calibration optimised the surrogate, not the model.",
              units="RMSE in W m-2 (Qle, Qh) or umol m-2 s-1 (NEE); R, NSE dimensionless; n days")

# %% [markdown]
# ## What it shows

# %%
r2 = pooled["r2"].unstack("surrogate")
lines = []
for flux in [f for f in ("Qle", "Qh") if f in r2.index]:
    parts = [f"{kind} R² = {r2.loc[flux, kind]:.3f} ({'meets' if r2.loc[flux, kind] >= 0.95 else 'misses'} the "
             "0.95 target)" for kind in r2.columns]
    lines.append(f"- **{flux}**: " + "; ".join(parts) + ".")
better = {flux: r2.loc[flux].idxmax() for flux in r2.index}
show_markdown("On parameter sets they never saw:\n\n" + "\n".join(lines) + "\n\nThe more faithful design per flux: "
              + ", ".join(f"{f}: {k}" for f, k in better.items()) + ". "
              + f"The ensemble has {store.n_members} members per site; small ensembles and short training (quick "
              "mode) leave the surrogates less faithful than the full study.")

# %% [markdown]
# ## What comes next
#
# Chapter 4 freezes these surrogates and trains a parameter generator
# through each of them against the tower observations, then runs the land
# model itself with the parameters found.
