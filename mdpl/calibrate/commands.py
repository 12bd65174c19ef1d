"""``mdpl calibrate``: the whole study (ensemble -> surrogates -> calibrations -> land-model runs -> metrics).

Writes ``OUT/metrics.json`` (``{"records": [...]}``), ``OUT/parameters.csv``,
the checkpoints and the resolved configuration; a rerun reuses finished
stages (see :mod:`mdpl.study`).

Like every ``commands`` module, this one belongs to the command line (the top
layer, see :mod:`mdpl.architecture`), not to the package beside it: it may
call the study orchestrator, and nothing in ``mdpl.calibrate`` imports it.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate the land model at flux-tower sites (MdPL, dPL, direct, defaults) and score it",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--sites", nargs="+", metavar="SITE", help="site codes (default: every site found, or the synthetic five)")
    p.add_argument("--mode", default=None, help="quick | full (default: the config's, else quick)")
    p.add_argument("--out", required=True, help="output directory (created; reused stages are kept)")
    p.add_argument("--config", help="YAML configuration (see mdpl.config)")
    p.add_argument("--seed", type=int, help="random seed (default: the config's)")
    p.add_argument("--device", help="auto | cpu | cuda (default: the config's)")
    p.add_argument("--sources", nargs="+", metavar="SOURCE",
                   help="parameter sources: default mdpl dpl direct classical (default: the config's)")
    p.add_argument("--data-dir", help="directory of flux-tower files (default: $MDPL_DATA_DIR or ../shared/data)")
    p.add_argument("--twin", action="store_true",
                   help="twin experiment instead: synthetic twins of --sites, observations from hidden true parameters")
    p.add_argument("--twin-years", type=float, default=1.0, help="length of each synthetic twin in years (default 1)")
    p.add_argument("--twin-step", type=int, default=1800, help="time step of the synthetic twins in s (default 1800)")
    p.add_argument("--design", action="store_true",
                   help="the paper's 20-site design as a twin (mdpl.twin_design): five towers per PFT group, true "
                        "parameters from a known rule of the climate; study, leave-one-site-out transfer, recovery")
    p.add_argument("--per-group", type=int, default=5, help="--design: towers per PFT group, 1-5 (default 5: 20 sites)")
    p.add_argument("--transfer-epochs", type=int, default=None,
                   help="--design: epochs of each leave-one-site-out generator (default: the study's)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import os
    import sys
    import time

    import numpy as np

    from mdpl.config import load_config, validate
    from mdpl.errors import ConfigError

    if args.mode is not None and args.mode not in ("quick", "full"):
        raise ConfigError(f"--mode: expected 'quick' or 'full', got {args.mode!r}")
    cfg = load_config(args.config, mode=args.mode, seed=args.seed, device=args.device, out_dir=args.out)
    if args.sites:
        cfg.data.sites = list(args.sites)
    if args.sources:
        cfg.calibration.sources = list(args.sources)
    if args.data_dir:
        cfg.data.data_dir = args.data_dir
    validate(cfg)
    if args.sites and cfg.data.data_dir is None:
        _check_site_codes(args.sites)
    if args.twin or args.design:
        _check_twin_options(args)
    if args.design and not 1 <= args.per_group <= 5:
        raise ConfigError(f"--per-group: must lie in 1..5 (the design has five towers per PFT group), got {args.per_group}")
    if args.design and args.transfer_epochs is not None and args.transfer_epochs < 1:
        raise ConfigError(f"--transfer-epochs: must be >= 1, got {args.transfer_epochs}")
    from mdpl.config import default_data_dir
    from mdpl.io import check_output_dir

    check_output_dir(args.out, data_dirs=[cfg.data.data_dir or default_data_dir()], create=False)  # before any work

    progress = os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")
    if args.design:
        return _run_design(args, cfg, progress)
    if args.twin:
        return _run_twin(args, cfg, progress)

    from mdpl.study import run_study

    t0 = time.perf_counter()
    res = run_study(cfg, args.out, progress=progress)
    wall = time.perf_counter() - t0
    print(f"{len(res.sites)} sites ({res.data_source}), sources {', '.join(sorted(res.records.source.unique()))}; "
          f"{wall:.0f} s")
    for src in [s for s in ("mdpl", "dpl", "direct", "classical") if s in set(res.records.source)]:
        summ = res.summary(source=src)
        if summ.empty:
            continue
        print(f"held-out daily skill, {src} vs PFT defaults:")
        print(summ.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        for flux, h in res.headline(source=src).items():
            change = h["mean_rmse_change_pct"]
            change = f"{change:+.1f} %" if np.isfinite(change) else "n/a (no scored held-out days)"
            print(f"  {flux}: lower RMSE at {h['improved']}/{h['sites']} sites, mean RMSE change {change}")
    cred = res.credibility()
    if not cred.empty:
        print("credibility (held-out daily; NEE kept: not worse than defaults by > 10 %; "
              "at bound: moved parameters within 2 % of a bound, per site):")
        print(cred.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for w in res.warnings:
        print(f"WARNING: {w}", file=sys.stderr)
    print(f"wrote {args.out}/metrics.json, {args.out}/parameters.csv")
    return 0


def _run_twin(args, cfg, progress: bool) -> int:
    """``--twin``: the twin experiment (see :mod:`mdpl.twin`) on synthetic twins of the sites."""
    from mdpl.data.synthetic import default_sites
    from mdpl.twin import twin_experiment

    sites = list(args.sites or cfg.data.synthetic_sites)
    datasets = default_sites(years=args.twin_years, seed=cfg.seed, time_step_s=args.twin_step, sites=sites)
    res = twin_experiment(cfg, args.out, datasets=datasets, progress=progress)
    print("daily RMSE against the truth run (W m-2 for Qle/Qh) and reduction from PFT defaults (%):")
    print(res.skill.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for src, s in res.summary["sources"].items():
        print(f"  {src}: mean RMSE reduction Qle {s['mean_reduction_pct']['Qle']:.1f} %, Qh {s['mean_reduction_pct']['Qh']:.1f} %; "
              f"identifiable parameters within 0.15 (unit cube) of the truth: {100 * s['identifiable_within_0.15']:.0f} %")
    print(f"wrote {args.out}/twin_skill.csv, {args.out}/twin_parameters.csv, {args.out}/twin_summary.json")
    return 0


def _run_design(args, cfg, progress: bool) -> int:
    """``--design``: the 20-site design twin (:mod:`mdpl.twin_design`); prints its recovery and skill tables."""
    from mdpl.twin_design import design_experiment

    res = design_experiment(cfg, args.out, per_group=args.per_group, years=args.twin_years, time_step_s=args.twin_step,
                            transfer_epochs=args.transfer_epochs, progress=progress)
    fmt = lambda v: f"{v:.3g}"  # noqa: E731
    print(f"{res.summary['sites']} design towers; rule recovery (unit-cube deviations from the PFT defaults, "
          "sites where the screen let the parameter move):")
    print(res.rule.to_string(index=False, float_format=fmt))
    print("held-out daily RMSE against the truth run, mean over sites (W m-2; NEE umol m-2 s-1):")
    print(pd_frame(res.summary["heldout_rmse_vs_truth"]).to_string(float_format=fmt))
    print(f"wall time {res.summary['wall_s']['total']:.0f} s; wrote {args.out}/design_*.csv, {args.out}/design_summary.json")
    return 0


def pd_frame(nested: dict):
    """source -> {flux: value} as a DataFrame (rows: source)."""
    import pandas as pd

    return pd.DataFrame(nested).T


def _check_twin_options(args) -> None:
    """--twin-years and --twin-step: a record of at least one day on a step that divides the day."""
    from mdpl.errors import ConfigError

    if not args.twin_years * 365 >= 1:
        raise ConfigError(f"--twin-years: must be at least one day (1/365 year), got {args.twin_years}")
    if not 60 <= args.twin_step <= 86400 or 86400 % args.twin_step:
        raise ConfigError(f"--twin-step: seconds between 60 and 86400 that divide one day (e.g. 1800, 3600), "
                          f"got {args.twin_step}")


def _check_site_codes(sites) -> None:
    """Unknown site codes are a clear error before any work starts."""
    from mdpl.data.catalogue import site_info

    for s in sites:
        site_info(s)
