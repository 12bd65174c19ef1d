"""``mdpl benchmark``: every baseline and peer against the same observations, one table and one figure."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "benchmark",
        help="tidy skill table + ranking figure: MdPL/dPL/default vs LSTM, 1lin, 3km27 and peer LSMs",
        description=(
            "Write DIR/benchmark.csv (site, pft, flux, scale, model, rmse, r, nse, kge, bias, n, sample, period, "
            "comparison, basis, rank), DIR/ranking.png and DIR/summary.md."
        ),
    )
    p.add_argument("--sites", nargs="+", default=None, help="site codes (default: every site in the data directory)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--study", default=None, help="a `mdpl calibrate --out` directory (adds default/MdPL/dPL/direct rows)")
    p.add_argument("--data-dir", default=None, help="flux-tower files (default: $MDPL_DATA_DIR or ../shared/data)")
    p.add_argument(
        "--peers-dir", action="append", default=None,
        help="directory of peer *_metrics.csv / *_series.json (repeatable; default: <data>/reference/peers)",
    )
    p.add_argument("--mode", choices=("quick", "full"), default="quick")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-lstm", action="store_true", help="skip the observation LSTM")
    p.add_argument(
        "--lsm", action="store_true",
        help="re-run the land model with every study parameter set over each site's whole record at the native step "
             "(MdPL/dPL/default on the peers' exact basis; costly, default in --mode full)",
    )
    p.set_defaults(func=run_benchmark)


def _load_datasets(sites, data_dir):
    """Canonical Datasets by site code from the data layer."""
    from mdpl.data import load_sites

    dss = load_sites(data_dir, list(sites) if sites else None)
    if isinstance(dss, dict):
        return dss
    return {str(ds.attrs["site"]): ds for ds in dss}


def _peers_dirs(args) -> list[Path]:
    from mdpl.baselines.peers import default_peers_dir

    if args.peers_dir:
        return [Path(d) for d in args.peers_dir]
    if args.data_dir:
        p = Path(args.data_dir) / "reference" / "peers"
        return [p] if p.is_dir() else []
    d = default_peers_dir()
    return [d] if d is not None else []


def run_benchmark(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdpl.baselines.table import build_benchmark_table
    from mdpl.evaluate.ranking import ranking_figure, ranking_summary

    from mdpl.io import atomic_write_text, check_output_dir

    out = check_output_dir(args.out, data_dirs=[args.data_dir])
    datasets = _load_datasets(args.sites, args.data_dir)
    table = build_benchmark_table(
        datasets,
        study_dir=args.study,
        peers_dirs=_peers_dirs(args),
        mode=args.mode,
        seed=args.seed,
        include_lstm=not args.no_lstm,
        include_lsm=args.lsm or args.mode == "full",
    )
    csv = out / "benchmark.csv"
    atomic_write_text(csv, table.to_csv(index=False, float_format="%.5g"))
    fig, _ = ranking_figure(table)
    fig.savefig(out / "ranking.png", dpi=120)
    plt.close(fig)
    (out / "summary.md").write_text(ranking_summary(table))
    print(f"wrote {csv} ({len(table)} rows, {table['model'].nunique()} models, {table['site'].nunique()} sites), "
          f"{out / 'ranking.png'}, {out / 'summary.md'}")
    return 0
