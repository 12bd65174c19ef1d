"""``mdpl lsm``: run the embedded land model on a forcing file, show default parameters.

``mdpl lsm run --forcing MET.nc [--params P.json] --out OUT.nc`` reads one
site's forcing (a canonical/ALMA file, e.g. as written by
:class:`~mdpl.ils.ExternalModel`, or a raw PLUMBER2/PALS met file), runs the
embedded model with the parameters of P.json (``{name: value}``, physical
units; names left out take the site's IGBP defaults) and writes ALMA output
on the forcing's time axis. This is the command the ExternalModel test drives.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("lsm", help="run the embedded land model", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="lsm_command", metavar="ACTION")
    r = sub.add_parser("run", help="run one site's forcing file, write ALMA output netCDF")
    r.add_argument("--forcing", required=True, help="forcing netCDF (canonical/ALMA or PLUMBER2/PALS met)")
    r.add_argument("--params", help="JSON {name: value} in physical units; missing names take IGBP defaults")
    r.add_argument("--out", required=True, help="output netCDF path")
    r.add_argument("--daily", action="store_true", help="write daily means instead of the forcing's step")
    r.add_argument("--no-spinup", action="store_true", help="start from the initial state, no spin-up")
    r.add_argument("--device", default="cpu", help="auto, cpu or cuda (default cpu)")
    r.add_argument("--dtype", choices=("float32", "float64"), help="default: the config's lsm.dtype")
    r.add_argument("--config", help="YAML configuration (its lsm: section is used)")
    r.set_defaults(func=_run)
    d = sub.add_parser("defaults", help="print default parameters of an IGBP class as JSON")
    d.add_argument("igbp", help="IGBP class, e.g. CRO, EBF, GRA")
    d.set_defaults(func=_defaults)
    t = sub.add_parser("parameters", help="list the calibrated parameters with units and bounds")
    t.set_defaults(func=_parameters)
    p.set_defaults(func=lambda a: (p.print_help(), 1)[1])


def _load_params(path: str | None, igbp: str):
    from mdpl.errors import ModelError
    from mdpl.ils.parameters import PARAMETER_SPACE

    if path is None:
        return PARAMETER_SPACE.defaults(igbp)
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"{p}: parameter file not found")
    try:
        raw = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ModelError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{p}: expected a JSON object {{name: value}}")
    bad = {k: v for k, v in raw.items() if isinstance(v, bool) or not isinstance(v, (int, float))}
    if bad:
        k, v = next(iter(bad.items()))
        raise ModelError(f"{p}: parameter {k!r} must be a number (physical units), got {json.dumps(v)}")
    try:
        return PARAMETER_SPACE.from_dict(raw, igbp=igbp)
    except ModelError as e:
        raise ModelError(f"{p}: {e}") from None


def run_file(forcing: str, out: str, params: str | None = None, *, daily: bool = False, spinup: bool = True,
             device: str = "cpu", dtype: str | None = None, config: str | None = None) -> Path:
    """Run the embedded model on one forcing file and write ALMA output (see module docstring)."""
    import torch

    from mdpl.config import load_config
    from mdpl.ils.forcing import read_forcing_netcdf
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.io import atomic_netcdf, check_output_file

    out_p = check_output_file(out)  # before the run, not after it
    cfg = load_config(config).lsm
    if dtype:
        cfg.dtype = dtype
    ds = read_forcing_netcdf(forcing)
    igbp = str(ds.attrs.get("igbp", ""))
    p = _load_params(params, igbp)
    model = EmbeddedLSM(cfg, device=device)
    with torch.no_grad():
        res = model.simulate(ds, p, daily=daily, spinup=spinup)
    xds = res.to_dataset().isel(site=0, member=0, drop=True)
    xds.attrs.update({"site": str(ds.attrs.get("site", "")), "igbp": igbp, "model": "mdpl embedded LSM",
                      "parameters": json.dumps(model.parameter_space.to_dict(p)), "forcing_file": str(forcing)})
    return atomic_netcdf(out_p, xds)


def _run(args: argparse.Namespace) -> int:
    p = run_file(args.forcing, args.out, args.params, daily=args.daily, spinup=not args.no_spinup,
                 device=args.device, dtype=args.dtype, config=args.config)
    print(f"wrote {p}")
    return 0


def _defaults(args: argparse.Namespace) -> int:
    from mdpl.ils.parameters import PARAMETER_SPACE

    print(json.dumps(PARAMETER_SPACE.to_dict(PARAMETER_SPACE.defaults(args.igbp)), indent=1))
    return 0


def _parameters(args: argparse.Namespace) -> int:
    from mdpl.ils.parameters import PARAMETER_SPACE

    for row in PARAMETER_SPACE.table():
        print(f"{row['name']:16s} {row['units']:14s} [{row['lower']:g}, {row['upper']:g}] {row['scale']:6s} "
              f"{row['description']}")
    return 0
