"""``mdpl data inspect`` and ``mdpl data download``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="flux-tower data: inspect files, download PLUMBER2 sites")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True

    ins = sub.add_parser("inspect", help="per site: variables, period, time step, %% measured, what was filled")
    ins.add_argument("path", help="a data directory, or one Met/Flux file")
    ins.add_argument("--json", action="store_true", help='print {"sites": [...]} as JSON')
    ins.set_defaults(func=_inspect)

    dl = sub.add_parser("download", help="fetch PLUMBER2 v1.0 Met and Flux files (resumable)")
    dl.add_argument("sites", nargs="+", metavar="SITE", help="PLUMBER2 site codes, e.g. DK-Fou")
    dl.add_argument("--dest", required=True, help="directory to write into")
    dl.add_argument("--base-url", default=None, help="file server root (default: the official NCI THREDDS)")
    dl.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server")
    dl.set_defaults(func=_download)

    sy = sub.add_parser("synthesize", help="write synthetic twins of catalogue sites as ALMA Met files")
    sy.add_argument("sites", nargs="*", metavar="SITE", help="site codes (default: the five study sites)")
    sy.add_argument("--dest", required=True, help="directory to write into")
    sy.add_argument("--years", type=float, default=2.0)
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--time-step", type=int, default=1800, choices=(1800, 3600), help="seconds")
    sy.add_argument("--dialect", default="plumber2", choices=("plumber2", "pals"))
    sy.set_defaults(func=_synthesize)


def _site_files_for(path: Path):
    """SiteFiles for a directory (all sites) or a single Met/Flux/site file (exactly that file, partners beside it)."""
    from mdpl.data.discover import find_sites, site_files_of
    from mdpl.errors import DataError

    if path.is_dir():
        found = find_sites(path)
        if not found:
            raise DataError(f"{path}: no flux-tower files found (*_Met.nc/*_Flux.nc or *_met.nc/*_flux.nc)")
        return list(found.values())
    if not path.exists():
        raise DataError(f"{path}: file not found")
    return [site_files_of(path)]


def summarise(ds) -> dict:
    """The facts ``mdpl data inspect`` reports for one canonical Dataset."""
    from mdpl.data.fill import filled_dict
    from mdpl.data.schema import FLUX_VARS, FORCING_VARS, measured_name

    a = ds.attrs
    t = ds.time.values
    return {
        "site": a["site"],
        "site_name": a.get("site_name"),
        "source": a.get("source"),
        "igbp": a.get("igbp"),
        "pft_group": a.get("pft_group"),
        "latitude": a.get("latitude"),
        "longitude": a.get("longitude"),
        "period": [str(t[0])[:19], str(t[-1])[:19]],
        "n_steps": int(t.size),
        "time_step_s": int(a["time_step_s"]),
        "time_stamp_in_file": a.get("time_stamp_in_file"),
        "utc_offset_h": a.get("utc_offset_h"),
        "forcing": [v for v in FORCING_VARS if v in ds],
        "fluxes": [v for v in FLUX_VARS if v in ds and bool(ds[v].notnull().any())],
        "measured_pct": {v: round(100.0 * float(ds[measured_name(v)].mean()), 2) for v in FLUX_VARS},
        "filled": filled_dict(a),
        "absent": [x for x in str(a.get("absent", "")).split(",") if x],
        "warnings": [x for x in str(a.get("warnings", "")).split(";") if x],
        "files": [x for x in str(a.get("files", "")).split(";") if x],
    }


def _inspect(args: argparse.Namespace) -> int:
    from mdpl.data.reader import read_site

    summaries = [summarise(read_site(sf.met, sf.flux, sf.site_file)) for sf in _site_files_for(Path(args.path))]
    if args.json:
        print(json.dumps({"sites": summaries}, indent=2))
        return 0
    for s in summaries:
        print(f"{s['site']}  {s['site_name']}  [{s['source']}, {s['igbp']} -> {s['pft_group']}, "
              f"{s['latitude']:.3f}N {s['longitude']:.3f}E]")
        print(f"  period     {s['period'][0]} .. {s['period'][1]}  ({s['n_steps']} steps of {s['time_step_s']} s, "
              f"stamps at step {s['time_stamp_in_file']} in file, UTC{s['utc_offset_h']:+g} h)")
        print(f"  forcing    {', '.join(s['forcing'])}")
        print("  measured   " + ", ".join(f"{k} {v:.1f}%" for k, v in s["measured_pct"].items() if k in s["fluxes"]))
        if s["absent"]:
            print(f"  absent     {', '.join(s['absent'])}")
        for k, v in s["filled"].items():
            print(f"  filled     {k}: {v}")
        for w in s["warnings"]:
            print(f"  WARNING    {w}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from mdpl.data.catalogue import site_info
    from mdpl.data.download import BASE_URL, download_site

    for code in args.sites:  # validate every code before fetching anything
        site_info(code)
    for code in args.sites:
        sf = download_site(code, args.dest, base_url=args.base_url or BASE_URL, timeout=args.timeout)
        print(f"{sf.site}: {sf.met.name}, {sf.flux.name} -> {Path(args.dest)}")
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    from mdpl.data.catalogue import site_info
    from mdpl.data.synthetic import DEFAULT_SITES, site_twin
    from mdpl.data.writer import write_alma

    from mdpl.errors import ConfigError

    codes = args.sites or list(DEFAULT_SITES)
    if not args.years * 365 >= 1:
        raise ConfigError(f"--years: must be at least one day (1/365 year), got {args.years}")
    for code in codes:
        site_info(code)
    from mdpl.io import check_output_dir

    check_output_dir(args.dest, option="--dest")
    for code in codes:
        ds = site_twin(code, years=args.years, seed=args.seed, time_step_s=args.time_step)
        sf = write_alma(ds, args.dest, dialect=args.dialect)
        print(f"{sf.site}: {sf.met}")
    return 0
