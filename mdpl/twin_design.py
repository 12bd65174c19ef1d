"""The paper's 20-site design as a twin: hidden parameters that follow a known rule of the site's climate.

Twenty catalogue towers, five in each of four PFT groups (evergreen forest,
woodland, cultivation, grassland), get synthetic forcing from the weather
generator (:mod:`mdpl.data.synthetic`, with a rough station climatology per
tower, :data:`DESIGN_CLIMATES`). Their hidden true parameters are the PFT
defaults moved, for a few parameters, by a smooth and documented function of
two climate indices the parameter generator sees among its inputs
(:data:`RULE`, :func:`climate_indices`)::

    zT = tanh((T - 12 degC) / 10 degC)       T: mean air temperature of the record (static input tair_mean_k)
    zD = tanh(ln D),  D = 0.5 SWdown / (lambda P)   Budyko's radiative dryness index, net radiation taken as
                                             half the mean global radiation (inputs swdown_mean_w_m2, precip_mm_yr)
    u_true[p] = clip(u_default[p] + a_T[p] zT + a_D[p] zD, 0.02, 0.98)   (unit cube of the parameter box)

so there is a right answer for g(forcing, attributes) to learn: a function
of the site's climate on top of its PFT. The rule is synthetic (a test of the
method, not a claim about vegetation), though its signs follow the
literature: lower Vcmax25 in warm climates (thermal acclimation), a lower
stomatal slope and deeper roots where it is dry (Lin et al. 2015; Fan et al.
2017), brighter canopies where it is warm. Every other parameter stays at
its PFT default. "Observations" are the land model run with the truth plus
daily noise (:func:`mdpl.twin.make_observations`).

:func:`design_experiment` runs the study on them (:func:`mdpl.study.run_study`),
then the leave-one-site-out transfer within each PFT group
(:func:`mdpl.transfer.loso_transfer`), and scores everything against the
noise-free truth run. Tables (small CSV/JSON) in the study directory:

- ``design_sites.csv``: site, group, IGBP, climate indices, true parameters;
- ``design_recovery.csv``: site x source x rule parameter: true, estimate and
  default in the unit cube, whether the Sobol screen let the route move it;
- ``design_rule.csv``: per source and rule parameter over the sites where it
  was moved: R^2 and correlation of the recovered *deviation from the PFT
  default* against the true one (a source that returns the defaults scores
  R^2 <= 0), mean unit-cube error against the default's;
- ``design_skill.csv``: site x flux x source: held-out daily RMSE against
  the truth run (sources default, the study's calibrations, loso, loso_own);
- ``design_summary.json``: the headline numbers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mdpl.errors import ConfigError

#: the design: five catalogue towers per PFT group, spanning each group's climates (boreal to tropical, humid to
#: semi-arid). ``per_group < 5`` takes the first ones of each group.
DESIGN_SITES: dict[str, tuple[str, ...]] = {
    "evergreen_forest": ("FI-Hyy", "ID-Pag", "FR-Pue", "NL-Loo", "AU-Tum"),
    "woodland": ("ZA-Kru", "US-Ton", "AU-How", "ES-LMa", "US-SRM"),
    "cultivation": ("DK-Fou", "ES-ES2", "US-Ne1", "IT-BCi", "FR-Gri"),
    "grassland": ("CN-Cng", "AU-DaP", "IT-Amp", "US-Var", "HU-Bug"),
}

#: rough station climatologies of the design towers (rounded; for the weather generator's
#: :class:`mdpl.data.synthetic.Climate`), beside the five of ``SITE_CLIMATES``
DESIGN_CLIMATES: dict[str, dict] = {
    # boreal Scots pine, southern Finland
    "FI-Hyy": dict(tair_mean_k=276.7, tair_seasonal_amp_k=11.0, tair_diurnal_amp_k=4.5, tair_synoptic_sd_k=3.5,
                   rh_mean=0.80, precip_mm_yr=710.0, wet_day_fraction=0.45, precip_seasonality=0.2,
                   precip_peak_doy=220.0, cloud_dry_mean=0.6, wind_mean_m_s=2.5),
    # Mediterranean holm oak, southern France
    "FR-Pue": dict(tair_mean_k=286.6, tair_seasonal_amp_k=8.5, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.65, precip_mm_yr=910.0, wet_day_fraction=0.22, precip_seasonality=0.5,
                   precip_peak_doy=290.0, cloud_dry_mean=0.4, wind_mean_m_s=2.5),
    # maritime Scots pine, the Netherlands
    "NL-Loo": dict(tair_mean_k=283.0, tair_seasonal_amp_k=7.0, tair_diurnal_amp_k=5.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.82, precip_mm_yr=790.0, wet_day_fraction=0.5, precip_seasonality=0.15,
                   precip_peak_doy=300.0, cloud_dry_mean=0.6, wind_mean_m_s=3.5),
    # cool-temperate eucalypt forest, 1200 m, SE Australia (winter rain)
    "AU-Tum": dict(tair_mean_k=282.7, tair_seasonal_amp_k=6.5, tair_diurnal_amp_k=6.5, tair_synoptic_sd_k=2.5,
                   rh_mean=0.70, precip_mm_yr=1000.0, wet_day_fraction=0.4, precip_seasonality=0.2,
                   precip_peak_doy=200.0, cloud_dry_mean=0.5, wind_mean_m_s=2.5),
    # Mediterranean oak savanna, California (winter rain, dry summer)
    "US-Ton": dict(tair_mean_k=288.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.55, precip_mm_yr=560.0, wet_day_fraction=0.18, precip_seasonality=0.9,
                   precip_peak_doy=15.0, cloud_dry_mean=0.3, wind_mean_m_s=2.0),
    # tropical savanna, Northern Territory (monsoon Dec-Mar)
    "AU-How": dict(tair_mean_k=300.2, tair_seasonal_amp_k=2.0, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=0.8,
                   warmest_doy=320.0, rh_mean=0.70, precip_mm_yr=1700.0, wet_day_fraction=0.35,
                   precip_seasonality=0.95, precip_peak_doy=30.0, cloud_dry_mean=0.4, wind_mean_m_s=2.5),
    # dehesa (tree-grass savanna), western Spain
    "ES-LMa": dict(tair_mean_k=289.4, tair_seasonal_amp_k=9.0, tair_diurnal_amp_k=8.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.60, precip_mm_yr=530.0, wet_day_fraction=0.2, precip_seasonality=0.6,
                   precip_peak_doy=330.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # semi-arid mesquite savanna, Arizona (summer monsoon)
    "US-SRM": dict(tair_mean_k=292.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.35, precip_mm_yr=380.0, wet_day_fraction=0.12, precip_seasonality=0.6,
                   precip_peak_doy=210.0, cloud_dry_mean=0.25, wind_mean_m_s=3.0),
    # maize-soybean, Nebraska (continental)
    "US-Ne1": dict(tair_mean_k=283.2, tair_seasonal_amp_k=13.5, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=3.5,
                   rh_mean=0.68, precip_mm_yr=790.0, wet_day_fraction=0.28, precip_seasonality=0.5,
                   precip_peak_doy=170.0, cloud_dry_mean=0.4, wind_mean_m_s=4.0),
    # irrigated maize, southern Italy
    "IT-BCi": dict(tair_mean_k=291.0, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=6.5, tair_synoptic_sd_k=1.8,
                   rh_mean=0.70, precip_mm_yr=500.0, wet_day_fraction=0.2, precip_seasonality=0.6,
                   precip_peak_doy=330.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # wheat-maize rotation near Paris
    "FR-Gri": dict(tair_mean_k=284.1, tair_seasonal_amp_k=7.5, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.78, precip_mm_yr=650.0, wet_day_fraction=0.45, precip_seasonality=0.1,
                   precip_peak_doy=300.0, cloud_dry_mean=0.55, wind_mean_m_s=3.5),
    # tropical pasture, Northern Territory (monsoon)
    "AU-DaP": dict(tair_mean_k=300.1, tair_seasonal_amp_k=3.0, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=1.0,
                   warmest_doy=320.0, rh_mean=0.60, precip_mm_yr=1250.0, wet_day_fraction=0.3,
                   precip_seasonality=0.95, precip_peak_doy=30.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # mountain grassland, 990 m, central Italy
    "IT-Amp": dict(tair_mean_k=283.1, tair_seasonal_amp_k=8.5, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.72, precip_mm_yr=1100.0, wet_day_fraction=0.3, precip_seasonality=0.5,
                   precip_peak_doy=320.0, cloud_dry_mean=0.45, wind_mean_m_s=2.5),
    # annual grassland, California (winter rain)
    "US-Var": dict(tair_mean_k=288.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.55, precip_mm_yr=560.0, wet_day_fraction=0.18, precip_seasonality=0.9,
                   precip_peak_doy=15.0, cloud_dry_mean=0.3, wind_mean_m_s=2.5),
    # sandy semi-arid grassland, Hungarian plain
    "HU-Bug": dict(tair_mean_k=283.9, tair_seasonal_amp_k=11.0, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=3.0,
                   rh_mean=0.70, precip_mm_yr=560.0, wet_day_fraction=0.3, precip_seasonality=0.3,
                   precip_peak_doy=170.0, cloud_dry_mean=0.45, wind_mean_m_s=2.5),
}

#: the hidden rule: parameter -> (a_T, a_D), unit-cube change per unit of zT and zD (see the module docstring)
RULE: dict[str, tuple[float, float]] = {
    "vcmax25": (-0.3, 0.0),
    "bb_slope": (0.0, -0.3),
    "root_depth_m": (0.0, 0.3),
    "albedo_canopy": (0.2, 0.0),
}

LAMBDA_J_KG = 2.45e6  # latent heat of vaporisation
TWIN_SOURCES_EXTRA = ("loso", "loso_own")


def design_site_codes(per_group: int = 5, groups: tuple[str, ...] | None = None) -> list[str]:
    """The design's towers, group by group (``per_group`` of each, at most 5)."""
    if not 1 <= int(per_group) <= 5:
        raise ConfigError(f"design: per_group must lie in 1..5 (the design has five towers per PFT group), got {per_group}")
    groups = tuple(groups or DESIGN_SITES)
    bad = [g for g in groups if g not in DESIGN_SITES]
    if bad:
        raise ConfigError(f"design: unknown PFT group(s) {', '.join(bad)}; known: {', '.join(DESIGN_SITES)}")
    return [s for g in groups for s in DESIGN_SITES[g][: int(per_group)]]


def design_sites(per_group: int = 5, *, groups: tuple[str, ...] | None = None, years: float = 1.0, seed: int = 0,
                 time_step_s: int = 1800) -> list:
    """Synthetic twins (canonical Datasets, forcing only) of the design's towers, with their design climates."""
    from mdpl.data.catalogue import site_info
    from mdpl.data.synthetic import SITE_CLIMATES, SITE_UTC_OFFSET_H, Climate, generate_site

    out = []
    for code in design_site_codes(per_group, groups):
        info = site_info(code)
        over = DESIGN_CLIMATES.get(code) or SITE_CLIMATES.get(code, {})
        clim = Climate.from_latitude(info["latitude"], info["elevation_m"], **over)
        out.append(generate_site(code, latitude=info["latitude"], longitude=info["longitude"],
                                 elevation_m=info["elevation_m"], igbp=info["igbp"],
                                 start=f"{info['start_year']}-01-01", years=years, time_step_s=time_step_s,
                                 seed=seed, climate=clim, site_name=f"{info['site_name']} (design twin)",
                                 utc_offset_h=SITE_UTC_OFFSET_H.get(code)))
    return out


def climate_indices(features) -> dict[str, float]:
    """The rule's inputs from a site's :class:`~mdpl.data.features.SiteFeatures` static attributes.

    ``tair_c`` (degC, mean of the daily air temperature), ``dryness`` (Budyko's radiative dryness index
    0.5 SWdown / (lambda P), dimensionless) and the two squashed indices ``zT``, ``zD`` in (-1, 1).
    """
    t_c = float(features.static_var("tair_mean_k")) - 273.15
    p_kg_m2_s = max(float(features.static_var("precip_mm_yr")), 10.0) / (365.25 * 86400.0)
    d = 0.5 * float(features.static_var("swdown_mean_w_m2")) / (LAMBDA_J_KG * p_kg_m2_s)
    return {"tair_c": t_c, "dryness": d, "zT": float(np.tanh((t_c - 12.0) / 10.0)), "zD": float(np.tanh(np.log(d)))}


def rule_truth(space, features_list, rule: dict[str, tuple[float, float]] | None = None) -> np.ndarray:
    """True parameters (n_sites, P), physical: each site's PFT defaults moved by ``rule`` (:data:`RULE`)."""
    rule = RULE if rule is None else rule
    bad = [p for p in rule if p not in space.names]
    if bad:
        raise ConfigError(f"design rule: parameter(s) {', '.join(bad)} not in the model's space "
                          f"({', '.join(space.names)})")
    rows = []
    for f in features_list:
        u = np.asarray(space.to_unit(np.clip(space.defaults(f.igbp), space.lower, space.upper)), float)
        z = climate_indices(f)
        for p, (a_t, a_d) in rule.items():
            j = space.index(p)
            u[j] = np.clip(u[j] + a_t * z["zT"] + a_d * z["zD"], 0.02, 0.98)
        rows.append(np.clip(np.asarray(space.from_unit(u), float), space.lower, space.upper))
    return np.stack(rows)


@dataclass
class DesignResult:
    """Outcome of :func:`design_experiment` (the tables it wrote, as DataFrames)."""

    out_dir: Path
    sites: pd.DataFrame
    recovery: pd.DataFrame
    rule: pd.DataFrame
    skill: pd.DataFrame
    summary: dict


def _r2(est: np.ndarray, true: np.ndarray) -> float:
    """Coefficient of determination of ``est`` as a prediction of ``true`` (NaN with fewer than 3 values)."""
    if len(true) < 3:
        return float("nan")
    ss = float(np.sum((true - true.mean()) ** 2))
    return float(1.0 - np.sum((est - true) ** 2) / ss) if ss > 0 else float("nan")


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def recovery_tables(space, sites, igbp, truth, estimates: dict[str, np.ndarray], moved: dict[str, np.ndarray],
                    rule: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per site, per parameter) recovery of the rule parameters, and its summary per source and parameter.

    ``estimates``: source -> (n_sites, P) physical; ``moved``: source -> (n_sites, P) bool, where the source
    was free to move the parameter (the Sobol screen's verdict; all True for a source without a screen).
    The summary scores deviations from the PFT default over the moved sites only: R^2 and correlation of the
    recovered deviation against the true one, and the mean unit-cube error (``mae``) against ``mae_default``.
    """
    u_true = np.asarray(space.to_unit(truth), float)
    u_def = np.asarray(space.to_unit(np.stack([np.clip(space.defaults(g), space.lower, space.upper) for g in igbp])),
                       float)
    rows = []
    for src, est in estimates.items():
        u_est = np.asarray(space.to_unit(np.clip(est, space.lower, space.upper)), float)
        for i, s in enumerate(sites):
            for p in rule:
                j = space.index(p)
                rows.append({"site": s, "source": src, "parameter": p, "u_true": u_true[i, j], "u_est": u_est[i, j],
                             "u_default": u_def[i, j], "moved": bool(moved[src][i, j]),
                             "unit_error": abs(u_est[i, j] - u_true[i, j])})
    rec = pd.DataFrame(rows)
    summ = []
    for (src, p), g in rec.groupby(["source", "parameter"], sort=False):
        m = g[g.moved]
        d_true = (m.u_true - m.u_default).to_numpy()
        d_est = (m.u_est - m.u_default).to_numpy()
        summ.append({"source": src, "parameter": p, "sites_moved": int(len(m)), "sites": int(len(g)),
                     "r2_deviation": _r2(d_est, d_true), "corr_deviation": _corr(d_est, d_true),
                     "mae": float(m.unit_error.mean()) if len(m) else float("nan"),
                     "mae_default": float(np.abs(d_true).mean()) if len(m) else float("nan")})
    return rec, pd.DataFrame(summ)


def _skill_rows(series: dict, truth_daily: list, days: list, sites: list[str], test_masks: dict,
                sources) -> list[dict]:
    """Held-out daily RMSE against the truth run of every source at every site where it has a series."""
    rows = []
    for i, site in enumerate(sites):
        ser = series.get(site)
        if ser is None:
            continue
        sim_days = pd.DatetimeIndex(ser["day"].values)
        pos = days[i].get_indexer(sim_days)
        test = np.asarray(test_masks[site], bool)
        for flux in ("Qle", "Qh", "NEE"):
            tr = np.where(pos >= 0, truth_daily[i][flux][np.maximum(pos, 0)], np.nan)
            for src in sources:
                name = f"sim_{src}_{flux}"
                if name not in ser:
                    continue
                e = (ser[name].values - tr)[test]
                rows.append({"site": site, "flux": flux, "source": src,
                             "rmse_vs_truth": float(np.sqrt(np.nanmean(e**2))) if np.isfinite(e).any() else np.nan})
    return rows


def design_experiment(cfg, out_dir, *, per_group: int = 5, groups: tuple[str, ...] | None = None,
                      years: float | None = None, time_step_s: int = 1800, rule: dict | None = None, model=None,
                      datasets=None, noise_frac: float = 0.1, transfer: bool = True, transfer_epochs: int | None = None,
                      progress: bool = True, device=None) -> DesignResult:
    """Run the design twin into ``out_dir``: study, leave-one-site-out transfer, scores against the truth.

    ``datasets`` default to :func:`design_sites` (``per_group`` towers of each of ``groups``, ``years``
    years, default ``cfg.data.synthetic_years``, seed ``cfg.seed``); ``model`` to the embedded LSM on
    ``device`` (default ``cfg.device``: the GPU when present). ``transfer`` False skips experiment 4;
    ``transfer_epochs`` trains its 2 x n_sites generators for that many epochs instead of the study's (they
    dominate the cost on a CPU; the study's own stages are unchanged).
    """
    from mdpl.calibrate.result import atomic_write_text
    from mdpl.data.features import site_features, split_periods
    from mdpl.device import resolve_device
    from mdpl.study import make_model, run_study
    from mdpl.twin import make_observations

    t0 = time.perf_counter()
    out = Path(out_dir)
    rule = RULE if rule is None else dict(rule)
    if datasets is None:
        datasets = design_sites(per_group, groups=groups, years=cfg.data.synthetic_years if years is None else years,
                                seed=cfg.seed, time_step_s=time_step_s)
    if model is None:
        model = make_model(cfg, resolve_device(device or cfg.device))
    space = model.parameter_space
    feats0 = [site_features(ds, 0.0) for ds in datasets]
    truth = rule_truth(space, feats0, rule)
    out.mkdir(parents=True, exist_ok=True)
    obs_ds, truth_daily, sens, days = make_observations(model, datasets, truth, noise_frac=noise_frac, seed=cfg.seed)
    study = run_study(cfg, out, progress=progress, datasets=obs_ds, model=model, device=device)
    t_study = time.perf_counter() - t0

    sites = [str(f.site) for f in feats0]
    igbp = [str(f.igbp) for f in feats0]
    site_rows = []
    for f, th in zip(feats0, truth):
        site_rows.append({"site": str(f.site), "pft_group": str(f.pft_group), "igbp": str(f.igbp),
                          "latitude": float(f.static_var("latitude")), **climate_indices(f),
                          **{f"true_{p}": float(th[space.index(p)]) for p in rule}})
    site_df = pd.DataFrame(site_rows)

    estimates = {"default": np.stack([np.clip(space.defaults(g), space.lower, space.upper) for g in igbp])}
    moved = {"default": np.ones((len(sites), space.n), bool)}
    for src, cal in study.calibrations.items():
        estimates[src] = np.stack([cal.params_of(s) for s in sites])
        sens_tab = cal.tables.get("sensitivity")
        m = np.ones((len(sites), space.n), bool)
        if sens_tab is not None and "calibrated" in sens_tab:
            free = sens_tab.groupby(["site", "parameter"]).calibrated.max()
            for i, s in enumerate(sites):
                for j, p in enumerate(space.names):
                    m[i, j] = bool(free.get((s, p), True))
        moved[src] = m

    series = {s: study.series(s) for s in sites}
    test_masks = {s: series[s]["test"].values.astype(bool) for s in sites}
    sources = ["default", *study.calibrations]
    t_transfer = 0.0
    transfer_groups: dict = {}
    if transfer and "mdpl" in study.calibrations:
        from mdpl.calibrate.series import merged_series
        from mdpl.transfer import groups_of, load_transfer, loso_transfer

        t1 = time.perf_counter()
        transfer_groups = groups_of({s: f for s, f in zip(sites, feats0)})
        if transfer_groups:
            tcfg = cfg
            if transfer_epochs:
                import copy

                tcfg = copy.deepcopy(cfg)
                tcfg.calibration.quick_epochs = tcfg.calibration.epochs = int(transfer_epochs)
            loso_transfer(tcfg, out, obs_ds, model=model, progress=progress)
            _, tseries = load_transfer(out)
            tparams = pd.read_csv(out / "transfer" / "parameters.csv")
            for s, ts in tseries.items():
                series[s] = merged_series(series[s], ts)
            for src in TWIN_SOURCES_EXTRA:
                p = tparams[tparams.source == src].set_index("site")
                if len(p):
                    keep = [i for i, s in enumerate(sites) if s in p.index]
                    est = estimates["default"].copy()
                    for i in keep:
                        est[i] = p.loc[sites[i], space.names].to_numpy(float)
                    estimates[src] = est
                    moved[src] = np.zeros_like(moved["default"])
                    moved[src][keep] = moved["mdpl"][keep] if src == "loso_own" else True
            sources += list(TWIN_SOURCES_EXTRA)
        t_transfer = time.perf_counter() - t1
    skill = pd.DataFrame(_skill_rows(series, truth_daily, days, sites, test_masks, sources))
    recovery, rule_summary = recovery_tables(space, sites, igbp, truth, estimates, moved, rule)

    def mean_rmse(src, flux):
        g = skill[(skill.source == src) & (skill.flux == flux)]
        return float(g.rmse_vs_truth.mean()) if len(g) else float("nan")

    summary = {
        "sites": len(sites), "groups": sorted(set(site_df.pft_group)),
        "per_group": {g: int(n) for g, n in site_df.pft_group.value_counts().sort_index().items()},
        "noise_frac": noise_frac, "mode": cfg.mode, "device": str(getattr(model, "device", device or cfg.device)),
        "rule": {p: {"a_T": a, "a_D": b} for p, (a, b) in rule.items()},
        "heldout_rmse_vs_truth": {src: {f: mean_rmse(src, f) for f in ("Qle", "Qh", "NEE")}
                                  for src in dict.fromkeys(skill.source) if len(skill)},
        "transfer_sites": sorted(s for g in transfer_groups.values() for s in g),
        "transfer_epochs": int(transfer_epochs) if transfer_epochs else None,
        "wall_s": {"study": t_study, "transfer": t_transfer, "total": time.perf_counter() - t0},
    }
    atomic_write_text(out / "design_sites.csv", site_df.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "design_recovery.csv", recovery.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "design_rule.csv", rule_summary.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "design_skill.csv", skill.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "design_summary.json", json.dumps(summary, indent=1, default=float))
    return DesignResult(out, site_df, recovery, rule_summary, skill, summary)


DESIGN_TABLES = ("design_sites.csv", "design_recovery.csv", "design_rule.csv", "design_skill.csv",
                 "design_summary.json")


def load_design(out_dir) -> DesignResult | None:
    """The tables of a finished :func:`design_experiment` in ``out_dir`` (None when some are missing)."""
    out = Path(out_dir)
    if not all((out / n).is_file() for n in DESIGN_TABLES):
        return None
    return DesignResult(out, *(pd.read_csv(out / n) for n in DESIGN_TABLES[:4]),
                        json.loads((out / "design_summary.json").read_text()))


#: where the committed result of a 20-site run lives (small tables only; the study directory stays under runs/)
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "twin20"


def quick_config():
    """A small configuration for the book's fallback run (4 towers, a few minutes on a CPU): no spin-up, a small
    ensemble and surrogate, MdPL only."""
    from mdpl.config import Config

    cfg = Config(seed=0)
    cfg.lsm.spinup_max_years = 0
    cfg.ensemble.n_members = 24
    cfg.surrogate.epochs = 8
    cfg.calibration.sources = ["default", "mdpl"]
    cfg.calibration.quick_epochs = 80
    cfg.calibration.screen_samples = 32
    cfg.calibration.candidates = 2
    return cfg


def design_result(out_dir, *, results_dir=None, run_quick: bool = True, progress: bool = False) -> DesignResult | None:
    """The design twin result a page shows: the committed 20-site tables (``results_dir``, default
    :data:`RESULTS_DIR`) when present, else a quick 4-site run cached in ``out_dir`` (two towers of two PFT
    groups, half a year each, :func:`quick_config`), run now when ``run_quick`` and not there yet."""
    res = load_design(RESULTS_DIR if results_dir is None else results_dir)
    if res is not None:
        return res
    res = load_design(out_dir)
    if res is not None or not run_quick:
        return res
    datasets = design_sites(2, groups=("evergreen_forest", "grassland"), years=0.5, time_step_s=3600)
    return design_experiment(quick_config(), out_dir, datasets=datasets, progress=progress)


def skill_basis(skill: pd.DataFrame) -> str:
    """The column a skill table scores: ``rmse_vs_truth`` (against the noise-free truth run), else
    ``rmse_vs_obs`` (against the noisy observations: a committed result made without the truth run)."""
    return "rmse_vs_truth" if "rmse_vs_truth" in skill else "rmse_vs_obs"


def skill_table(skill: pd.DataFrame, sites: pd.DataFrame) -> pd.DataFrame:
    """Mean held-out RMSE (:func:`skill_basis`) per PFT group and flux (rows) and source (columns), Qle and Qh."""
    s = skill[skill.flux.isin(["Qle", "Qh"])].merge(sites[["site", "pft_group"]], on="site")
    order = [c for c in ("default", "mdpl", "dpl", "direct", "loso", "loso_own") if c in set(s.source)]
    t = s.pivot_table(index=["pft_group", "flux"], columns="source", values=skill_basis(skill), aggfunc="mean")
    return t[order]
