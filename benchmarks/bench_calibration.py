"""Calibration cost to equal skill: MdPL (surrogate route), direct differentiable, classical optimiser.

A twin experiment on the embedded land model, so "skill" is known exactly:
one synthetic site (the weather generator's twin of a study site), its
"observations" = the land model run with hidden parameters plus noise. Every
method calibrates on the training days and is scored by running the land
model with its parameters on the held-out days (the calibration's own split).

1. :func:`mdpl.study.run_study` runs default, MdPL, direct and classical at the
   configured budgets; their cost is counted as land-model evaluations (one =
   one run of the site's record with one parameter set; MdPL's are the
   ensemble members its surrogate was trained on) and wall time (MdPL:
   ensemble + surrogate training + generator training).
2. Target skill = MdPL's held-out RMSE (mean of Qle and Qh). The direct and
   classical methods are re-run with doubled budgets until they reach it (or a
   cap), and the cost at which they first reach it is reported.

3. With several twins (``--sites A B ...`` or ``--n-sites N``), the surrogate's
   cost is shared by every tower, so the comparison is for all towers
   together: MdPL's held-out RMSE against CMA-ES's, the wall-time ratio, and
   the recovery of every parameter whose total Sobol index (MdPL's screen)
   reaches 0.05: within 0.1 of the truth in the unit cube.
4. ``--refine-rounds 0 1 2`` compares MdPL with that many surrogate-refinement
   rounds (:mod:`mdpl.calibrate.refine`) in one process: the first variant runs
   the whole study (CMA-ES too), the others rerun only MdPL's calibration on the
   same ensemble and first surrogate (both reused from the first run's stages), so
   each variant's wall time is ensemble + surrogate + calibration with its
   refinement. ``--extra-members N`` adds a variant with an N-member ensemble.
   Each variant is diagnosed on the training days: the surrogate's and the land
   model's daily RMSE against the observations at the generator's own
   parameters and at the truth (is the surrogate wrong where the generator went,
   or does its minimum lie elsewhere?).

Run: ``python benchmarks/bench_calibration.py [--days 120] [--n-sites 8] [--refine-rounds 0 1] [--no-write]`` (or ``mdpl bench calibration``).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import hardware, table, write_section  # noqa: E402

FLUXES = ("Qle", "Qh")
#: twins for --n-sites: the real towers' climates and PFTs first, then more catalogue sites
TWIN_SITES = ("CN-Cng", "DK-Fou", "ES-ES2", "ZA-Kru", "ID-Pag", "IT-Amp", "FI-Hyy", "US-Syv", "AU-How", "US-Ha1")
#: a parameter counts as recovered within this unit-cube distance of the truth
RECOVERY_TOL = 0.1
#: parameters whose total Sobol index reaches this are expected to be recovered
SENSITIVE_ST = 0.05


def twin(site: str, days: int, seed: int, model, noise_w_m2: float = 5.0):
    """A synthetic site whose Qle/Qh are the land model's with hidden parameters, plus noise."""
    import torch

    from mdpl.data.synthetic import site_twin

    ds = site_twin(site, years=days / 365.25, seed=seed, start="2001-01-01")
    space = model.parameter_space
    u = np.asarray(space.to_unit(space.defaults(str(ds.attrs["igbp"]))), float)
    rng = np.random.default_rng(seed)
    truth = np.asarray(space.from_unit(np.clip(u + rng.uniform(-0.3, 0.3, size=u.shape), 0.02, 0.98)), float)
    with torch.no_grad():
        res = model.simulate(ds, truth)
    for flux in FLUXES:
        v = res[flux][0].numpy().astype(float) + rng.normal(0.0, noise_w_m2, size=ds.sizes["time"])
        ds[flux] = ("time", v, {"units": "W m-2"})
        ds[f"{flux}_measured"] = ("time", np.ones(ds.sizes["time"], bool))
    ds.attrs["site"] = f"TWIN-{site}"
    return ds, truth


def held_out_rmse(model, datasets, feats, split, params: np.ndarray) -> float:
    """Mean over Qle and Qh of the daily held-out RMSE of the land model run with ``params`` (n_sites, P)."""
    from mdpl.calibrate.evaluation import evaluate_sources

    recs, _ = evaluate_sources(model, datasets, feats, {"x": params}, split, progress=False)
    v = [r["rmse"] for r in recs if r["period"] == "test" and r["scale"] == "daily" and r["flux"] in FLUXES]
    return float(np.mean(v))


def period_rmse(model, datasets, feats, split, params_by: dict, period: str = "train") -> dict[str, float]:
    """Per key of ``params_by`` ((n_sites, P) each): mean over sites, Qle and Qh of the land model's daily RMSE
    against the observations on ``period`` days."""
    from mdpl.calibrate.evaluation import evaluate_sources

    recs, _ = evaluate_sources(model, datasets, feats, params_by, split, progress=False)
    out = {}
    for k in params_by:
        v = [r["rmse"] for r in recs if r["source"] == k and r["period"] == period and r["scale"] == "daily"
             and r["flux"] in FLUXES]
        out[k] = float(np.mean(v))
    return out


def surrogate_rmse(sur, feats, split, params: np.ndarray, period: int = 0) -> float:
    """Mean over sites, Qle and Qh of the surrogate's daily RMSE against the observations (``split[i][period]``
    days, measured) at ``params`` (n_sites, P)."""
    import torch

    v = []
    for i, f in enumerate(feats):
        with torch.no_grad():
            pred = sur.predict(f, torch.as_tensor(params[i : i + 1], dtype=torch.float64))
        for flux in FLUXES:
            p = pred[flux][0].detach().cpu().numpy().astype(float)[: f.n_days]
            o = np.asarray(f.obs[flux], float)
            m = np.asarray(f.obs_mask[flux], bool) & np.asarray(split[i][period], bool) & np.isfinite(o) & np.isfinite(p)
            v.append(float(np.sqrt(np.mean((p[m] - o[m]) ** 2))))
    return float(np.mean(v))


def diagnose(out_dir: Path, model, dss, feats, split, truths: dict, source: str = "mdpl") -> dict:
    """Where MdPL's error comes from, on the training days (W m-2, mean over towers, Qle and Qh):

    ``sur_gen``/``lsm_gen``: the final surrogate's and the land model's RMSE at the generator's own parameters
    (before the land-model check); ``sur_truth``/``lsm_truth``: the same at the hidden truth (``lsm_truth`` is the
    noise floor). ``sur_gen`` << ``lsm_gen``: the generator went where the surrogate is wrong (exploitation);
    ``sur_truth`` < ``sur_gen``: the surrogate's own minimum was not found (optimisation); ``sur_truth`` >
    ``sur_gen`` ~ ``lsm_gen``: the surrogate's minimum is not the model's (surrogate error at the truth).
    """
    from mdpl.calibrate.result import CalibrationResult
    from mdpl.calibrate.surrogate_training import TrainedSurrogate

    refined = out_dir / "refine" / source / "surrogate"
    sur = TrainedSurrogate.load(refined if refined.is_dir() else out_dir / "surrogates" / "multitask", device="cpu")
    cal = CalibrationResult.load(out_dir / "calibration" / source)
    names = cal.param_names
    raw = cal.info.get("generator_params") or {}
    gen = np.array([[raw[s][n] for n in names] for s in cal.sites], float) if raw else np.asarray(cal.params, float)
    truth = np.array([truths[s] for s in cal.sites], float)
    lsm = period_rmse(model, dss, feats, split, {"gen": gen, "truth": truth}, "train")
    sel = cal.info.get("selection") or []
    return {"sur_gen": surrogate_rmse(sur, feats, split, gen), "lsm_gen": lsm["gen"],
            "sur_truth": surrogate_rmse(sur, feats, split, truth), "lsm_truth": lsm["truth"],
            "kept_defaults": sum(1 for r in sel if r.get("chosen") == "default"), "n_sites": len(cal.sites)}


def recovery(study, truths: dict[str, np.ndarray], space, source: str = "mdpl") -> dict:
    """Share of (site, parameter) pairs with total Sobol index >= SENSITIVE_ST recovered within RECOVERY_TOL."""
    si = study.sensitivity(source)
    cal = study.calibrations.get(source)
    if cal is None or si.empty:
        return {"pairs": 0, "recovered": 0, "worst": None}
    st = si[si.flux.isin(FLUXES)].groupby(["site", "parameter"]).ST.max()
    pairs, ok, worst = 0, 0, (0.0, None)
    for site, truth in truths.items():
        err = np.abs(np.asarray(space.to_unit(cal.params_of(site)), float) - np.asarray(space.to_unit(truth), float))
        for j, name in enumerate(space.names):
            if st.get((site, name), 0.0) >= SENSITIVE_ST:
                pairs += 1
                ok += int(err[j] <= RECOVERY_TOL)
                if err[j] > worst[0]:
                    worst = (float(err[j]), f"{site} {name}")
    return {"pairs": pairs, "recovered": ok, "worst": worst[1], "worst_unit_error": worst[0]}


def run(days: int = 120, seed: int = 0, site: str = "CN-Cng", max_doublings: int = 2, members: int | None = None,
        direct_epochs: int | None = None, classical_evals: int | None = None, ladder_budget_s: float = 1800.0,
        sites: list[str] | None = None, direct: bool = True, refine_rounds: list[int] | None = None,
        refine_members: int | None = None, refine_spread: float | None = None, extra_members: int = 0,
        cpu_time: bool = False, classical: bool = True) -> dict:
    """Run the comparison; budgets default to the quick configuration (``direct_epochs``/``classical_evals`` override).

    A doubled re-run is skipped when twice the previous run's wall time would exceed what is left of
    ``ladder_budget_s``; the report then says the target was not reached within the budget.
    ``refine_rounds`` (default: the configuration's): MdPL variants with that many refinement rounds (the first
    is the study's own); ``extra_members``: one more variant, no refinement, with that many ensemble members.
    ``cpu_time``: every stage time is this process's CPU seconds instead of wall seconds (the bench runs one
    thread, so on a machine shared with other jobs CPU seconds are what idle wall seconds would be).
    """
    import torch

    from mdpl.calibrate.classical import calibrate_classical, classical_budget
    from mdpl.calibrate.direct import calibrate_direct, direct_budget
    from mdpl.config import Config
    from mdpl.data.features import site_features, split_periods
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.study import ensemble_members, run_study

    torch.set_num_threads(1)
    if cpu_time:
        import mdpl.study

        mdpl.study.time = _CpuClock()
    cfg = Config(mode="quick", seed=seed, device="cpu")
    cfg.calibration.sources = ["default", "mdpl"] + (["direct"] if direct else []) + (["classical"] if classical else [])
    cfg.calibration.direct_quick_days = days
    if members:
        cfg.ensemble.n_members = int(members)
    if direct_epochs:
        cfg.calibration.direct_quick_epochs = int(direct_epochs)
    if classical_evals:
        cfg.calibration.classical_quick_evals = int(classical_evals)
    if refine_members:
        cfg.calibration.refine_members = int(refine_members)
    if refine_spread:
        cfg.calibration.refine_spread = float(refine_spread)
    rounds = [int(k) for k in (refine_rounds or [cfg.calibration.refine_rounds])]
    cfg.calibration.refine_rounds = rounds[0]
    model = EmbeddedLSM(cfg.lsm, device="cpu")
    sites = list(sites or [site])
    twins = [twin(s, days, seed + k, model) for k, s in enumerate(sites)]
    dss = [t[0] for t in twins]
    truths = {str(t[0].attrs["site"]): t[1] for t in twins}
    ds, truth = twins[0]
    feats = [site_features(d) for d in dss]
    split = [split_periods(f.days) for f in feats]
    if len(sites) > 1:
        max_doublings = 0
    with tempfile.TemporaryDirectory(prefix="mdpl-bench-cal-") as tmp:
        t0 = time.perf_counter()
        study = run_study(cfg, tmp, progress=False, datasets=dss, model=model)
        study_s = time.perf_counter() - t0
        results = {k: json.loads((Path(tmp) / "calibration" / k / "result.json").read_text())
                   for k in ("mdpl", "direct", "classical") if (Path(tmp) / "calibration" / k / "result.json").is_file()}
        variants = [_variant(f"refine {rounds[0]}", cfg, study, Path(tmp), model, dss, feats, split, truths)]
        base_t = study.timings
        for k in rounds[1:]:
            vcfg = copy.deepcopy(cfg)
            vcfg.calibration.refine_rounds = k
            vcfg.calibration.sources = ["default", "mdpl"]
            vs = run_study(vcfg, tmp, progress=False, datasets=dss, model=model)  # ensemble, surrogate: reused
            vs.timings.update({n: base_t.get(n, 0.0) for n in ("ensemble_s", "surrogate_multitask_s")})
            variants.append(_variant(f"refine {k}", vcfg, vs, Path(tmp), model, dss, feats, split, truths))
    if extra_members:
        with tempfile.TemporaryDirectory(prefix="mdpl-bench-cal-") as tmp2:
            vcfg = copy.deepcopy(cfg)
            vcfg.ensemble.n_members = int(extra_members)
            vcfg.calibration.refine_rounds = 0
            vcfg.calibration.sources = ["default", "mdpl"]
            vs = run_study(vcfg, tmp2, progress=False, datasets=dss, model=model)
            variants.append(_variant(f"{extra_members} members, refine 0", vcfg, vs, Path(tmp2), model, dss, feats,
                                     split, truths))
    rec = study.records
    rec = rec[(rec.period == "test") & (rec.scale == "daily") & (rec.flux.isin(FLUXES))]
    skill = rec.groupby("source")["rmse"].mean().to_dict()
    t = study.timings
    n_members = ensemble_members(cfg)
    rows = {
        "default": {"evals": 0, "wall_s": 0.0, "rmse": skill.get("default")},
        "mdpl": {"evals": n_members + int(results.get("mdpl", {}).get("info", {}).get("land_model_checks_per_site", 0)), "wall_s": t.get("ensemble_s", 0) + t.get("surrogate_multitask_s", 0)
                 + t.get("calibrate_mdpl_s", 0), "rmse": skill.get("mdpl"),
                 "surrogate_evals": results.get("mdpl", {}).get("n_surrogate_evals")},
        "direct": {"evals": results.get("direct", {}).get("n_model_evals"), "wall_s": t.get("calibrate_direct_s"),
                   "rmse": skill.get("direct")},
        "classical": {"evals": results.get("classical", {}).get("n_model_evals"),
                      "wall_s": t.get("calibrate_classical_s"), "rmse": skill.get("classical")},
    }
    target = rows["mdpl"]["rmse"]
    reach = {}
    spent = 0.0
    e0, _ = direct_budget(cfg)
    ev0, _ = classical_budget(cfg)
    for name in ("direct", "classical"):
        r = rows[name]
        if r["rmse"] is not None and r["rmse"] <= target:
            reach[name] = {"evals": r["evals"], "wall_s": r["wall_s"], "rmse": r["rmse"], "budget": "configured"}
            continue
        reach[name] = None
        last_wall = float(r["wall_s"] or 0.0)
        for k in range(1, max_doublings + 1):
            if 2.0 * last_wall > ladder_budget_s - spent:
                reach[name] = {"evals": r["evals"], "wall_s": r["wall_s"], "rmse": r["rmse"],
                               "budget": f"configured (x{2**k} skipped: over the {ladder_budget_s:.0f} s bench budget)"}
                break
            t1 = time.perf_counter()
            if name == "direct":
                res = calibrate_direct(model, [ds], feats, cfg, train_masks=[s[0] for s in split], epochs=e0 * 2**k,
                                       window_days=days, progress=False)
            else:
                res = calibrate_classical(model, [ds], feats, cfg, train_masks=[s[0] for s in split], evals=ev0 * 2**k,
                                          window_days=days, progress=False)
            wall = time.perf_counter() - t1
            sk = held_out_rmse(model, [ds], feats, split, res.params)
            spent += time.perf_counter() - t1
            last_wall = wall
            if sk <= target:
                reach[name] = {"evals": res.n_model_evals, "wall_s": wall, "rmse": sk, "budget": f"x{2**k}"}
                break
            reach[name] = {"evals": res.n_model_evals, "wall_s": wall, "rmse": sk, "budget": f"x{2**k} (not reached)"}
    rec_ = recovery(study, truths, model.parameter_space)
    return {"days": days, "site": site if len(sites) == 1 else f"{len(sites)} towers ({', '.join(sites)})",
            "members": n_members, "rows": rows, "target": target, "reach": reach, "study_s": study_s,
            "truth": truth.tolist(), "recovery": rec_, "n_sites": len(sites), "hardware": hardware(),
            "clock": "CPU" if cpu_time else "wall", "variants": variants if len(variants) > 1 or not classical else [],
            "refine_members": cfg.calibration.refine_members,
            "refine_spread": cfg.calibration.refine_spread}


class _CpuClock:
    """Stand-in for the ``time`` module in :mod:`mdpl.study`: ``perf_counter`` reads this process's CPU time."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def perf_counter() -> float:
        return time.process_time()


def _variant(name: str, cfg, study, out_dir: Path, model, dss, feats, split, truths) -> dict:
    """One MdPL variant's row: cost, held-out skill, recovery, surrogate gap and the training-day diagnosis."""
    from mdpl.study import ensemble_members

    rec = study.records
    rec = rec[(rec.period == "test") & (rec.scale == "daily") & (rec.flux.isin(FLUXES)) & (rec.source == "mdpl")]
    t = study.timings
    gap = [r["rmse"] for r in study.surrogate_gap if r.get("source") == "mdpl" and r.get("flux") in FLUXES]
    c = cfg.calibration
    row = {"variant": name, "members": ensemble_members(cfg), "refine_rounds": int(c.refine_rounds),
            "evals": ensemble_members(cfg) + int(c.refine_rounds) * int(c.refine_members),
            "ensemble_s": t.get("ensemble_s", 0.0), "surrogate_s": t.get("surrogate_multitask_s", 0.0),
            "calibrate_s": t.get("calibrate_mdpl_s", 0.0),
            "wall_s": t.get("ensemble_s", 0.0) + t.get("surrogate_multitask_s", 0.0) + t.get("calibrate_mdpl_s", 0.0),
            "rmse": float(rec.rmse.mean()), "recovery": recovery(study, truths, model.parameter_space),
            "gap_rmse": float(np.mean(gap)) if gap else None,
            "diagnosis": _diagnosis(out_dir, model, dss, feats, split, truths)}
    print(f"variant: {json.dumps(row, default=float)}", file=sys.stderr, flush=True)  # kept if a later variant fails
    return row


def _diagnosis(out_dir, model, dss, feats, split, truths) -> dict:
    try:
        return diagnose(out_dir, model, dss, feats, split, truths)
    except Exception as e:  # noqa: BLE001 - a diagnosis that fails must not lose the variant's numbers
        print(f"diagnosis failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        nan = float("nan")
        return {"sur_gen": nan, "lsm_gen": nan, "sur_truth": nan, "lsm_truth": nan, "kept_defaults": -1, "n_sites": 0}


def render(r: dict) -> str:
    rows = []
    for name, v in r["rows"].items():
        rows.append({"method": {"mdpl": "MdPL (surrogate route)", "direct": "direct (through the land model)",
                                "classical": "classical (CMA-ES)", "default": "default parameters"}[name],
                     "land-model evals": v["evals"], "wall s": v["wall_s"], "held-out RMSE W m-2": v["rmse"]})
    reach = []
    for name, v in r["reach"].items():
        if v is None:
            continue
        reach.append({"method": name, "budget": v["budget"], "land-model evals": v["evals"], "wall s": v["wall_s"],
                      "held-out RMSE W m-2": v["rmse"]})
    m = r["rows"]["mdpl"]
    ratio = []
    for name, v in r["reach"].items():
        if v and "not reached" not in v["budget"] and "skipped" not in v["budget"] and v["rmse"] <= r["target"] and m["wall_s"]:
            bound = " (already at its configured budget: an upper bound)" if v["budget"] == "configured" else ""
            ratio.append(f"{name}: x{v['wall_s'] / m['wall_s']:.2f} the wall time and x{(v['evals'] or 0) / max(m['evals'], 1):.2f} "
                         f"the land-model evaluations of MdPL{bound}")
    rec_ = r.get("recovery") or {}
    c = r["rows"].get("classical", {})
    versus = ""
    if c.get("rmse") and m.get("rmse") and c.get("wall_s"):
        versus = (f"MdPL vs CMA-ES, all towers together: held-out RMSE x{m['rmse'] / c['rmse']:.2f} "
                  f"(target <= 1.10), wall time x{m['wall_s'] / c['wall_s']:.2f} (target <= 0.33). ")
    if rec_.get("pairs"):
        versus += (f"Parameters with total Sobol index >= {SENSITIVE_ST}: {rec_['recovered']} of {rec_['pairs']} "
                   f"(site, parameter) pairs recovered within {RECOVERY_TOL} of the truth (unit cube); worst "
                   f"{rec_['worst']} at {rec_['worst_unit_error']:.2f}.\n\n")
    clock = ("All stage times below are this process's CPU seconds (one thread; measured so because the machine "
             "was shared with other jobs), not wall seconds.\n\n") if r.get("clock") == "CPU" else ""
    return versus + clock + render_variants(r) + (
        f"Twin experiment: synthetic twin of {r['site']}, {r['days']} days at 30 min, observations = embedded land "
        f"model with hidden parameters + 5 W m-2 noise; held-out = the calibration's split. Configured quick budgets "
        f"(MdPL ensemble of {r['members']} members):\n\n"
        + table(rows, ["method", "land-model evals", "wall s", "held-out RMSE W m-2"])
        + f"\n\nTo reach MdPL's held-out RMSE ({r['target']:.2f} W m-2), budgets doubled until reached:\n\n"
        + (table(reach, ["method", "budget", "land-model evals", "wall s", "held-out RMSE W m-2"]) if reach else "(none needed)")
        + "\n\n" + ("; ".join(ratio) + ".\n" if ratio else "No method other than MdPL reached the target within the cap.\n")
        + "\nMdPL's land-model evaluations are the ensemble runs (one batched call) plus its land-model check of "
          "the generator checkpoints (batched with the evaluation runs, whose wall time is not counted for any "
          "method); direct counts forward+backward "
          "runs of the training window, classical counts population members.\n"
    )


def render_variants(r: dict) -> str:
    """The MdPL-variant table (refinement rounds, ensemble size) against CMA-ES of the same run."""
    vs = r.get("variants") or []
    if not vs:
        return ""
    c = r["rows"].get("classical", {})
    rows = []
    for v in vs:
        rec_, d = v["recovery"], v["diagnosis"]
        rows.append({
            "MdPL variant": v["variant"], "land-model runs / tower": v["evals"], "wall s (ens + sur + cal)":
                f"{v['wall_s']:.0f} ({v['ensemble_s']:.0f} + {v['surrogate_s']:.0f} + {v['calibrate_s']:.0f})",
            "held-out RMSE": v["rmse"], "x CMA-ES RMSE": v["rmse"] / c["rmse"] if c.get("rmse") else None,
            "x CMA-ES wall": v["wall_s"] / c["wall_s"] if c.get("wall_s") else None,
            "recovered (ST >= 0.05)": f"{rec_.get('recovered')}/{rec_.get('pairs')}",
            "surrogate gap": v["gap_rmse"],
            "train: sur@gen / lsm@gen": f"{d['sur_gen']:.2f} / {d['lsm_gen']:.2f}",
            "train: sur@truth / lsm@truth": f"{d['sur_truth']:.2f} / {d['lsm_truth']:.2f}",
            "defaults kept": f"{d['kept_defaults']}/{d['n_sites']}"})
    return (f"MdPL variants against CMA-ES of the same run (CMA-ES: held-out {c.get('rmse') or float('nan'):.2f} W m-2 in "
            f"{c.get('wall_s') or float('nan'):.0f} s; refinement: {r['refine_members']} runs per tower per round, "
            f"spread {r['refine_spread']} in the unit cube). Wall time = ensemble + first surrogate (shared, from the "
            "first run) + MdPL calibration with its refinement rounds (land-model runs, surrogate retraining, "
            "generator). Surrogate gap: daily RMSE between the final surrogate and the land model at the chosen "
            "parameters, held-out + training days. Train columns: daily RMSE against the observations on the "
            "training days of the final surrogate (sur) and of the land model (lsm), at the generator's own "
            "parameters (gen, before the land-model check) and at the hidden truth (lsm@truth = the noise floor); "
            "W m-2, mean over towers, Qle and Qh.\n\n"
            + table(rows, list(rows[0])) + "\n\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="mdpl bench calibration", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--members", type=int, default=None, help="ensemble members (default: the quick config)")
    ap.add_argument("--max-doublings", type=int, default=2)
    ap.add_argument("--direct-epochs", type=int, default=None, help="direct calibration epochs (default: quick config)")
    ap.add_argument("--classical-evals", type=int, default=None, help="CMA-ES evaluations (default: quick config)")
    ap.add_argument("--ladder-budget-s", type=float, default=1800.0, help="wall-time budget for the doubled re-runs")
    ap.add_argument("--sites", nargs="+", default=None, help="catalogue sites to twin (default: CN-Cng)")
    ap.add_argument("--n-sites", type=int, default=0, help=f"twin the first N of {', '.join(TWIN_SITES)}")
    ap.add_argument("--no-direct", action="store_true", help="leave out the direct route")
    ap.add_argument("--refine-rounds", type=int, nargs="+", default=None,
                    help="MdPL variants with these refinement rounds (default: the config's)")
    ap.add_argument("--refine-members", type=int, default=None, help="refinement runs per tower per round")
    ap.add_argument("--refine-spread", type=float, default=None, help="refinement cloud spread (unit cube)")
    ap.add_argument("--extra-members", type=int, default=0, help="one more MdPL variant with this ensemble size")
    ap.add_argument("--no-classical", action="store_true", help="leave out CMA-ES (e.g. a second process of variants)")
    ap.add_argument("--cpu-time", action="store_true", help="time stages in process CPU seconds (a loaded machine)")
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    a = ap.parse_args(argv)
    if a.n_sites and not 1 <= a.n_sites <= len(TWIN_SITES):
        ap.error(f"--n-sites must lie in 1..{len(TWIN_SITES)}")
    sites = a.sites or (list(TWIN_SITES[: a.n_sites]) if a.n_sites else None)
    r = run(a.days, max_doublings=a.max_doublings, members=a.members, direct_epochs=a.direct_epochs,
            classical_evals=a.classical_evals, ladder_budget_s=a.ladder_budget_s, sites=sites, direct=not a.no_direct,
            refine_rounds=a.refine_rounds, refine_members=a.refine_members, refine_spread=a.refine_spread,
            extra_members=a.extra_members, cpu_time=a.cpu_time, classical=not a.no_classical)
    text = render(r)
    print(f"hardware: {r['hardware']}\n{text}")
    if not a.no_write:
        cmd = "python benchmarks/bench_calibration.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section("Calibration cost to equal skill", text, cmd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
