"""``mdpl batch``: run one notebook once per site, concurrently, with papermill on Dask.

Each site is one papermill execution on a Dask worker: a local cluster of
processes by default (``n_workers = min(sites, cores)``), or an existing
cluster with ``--scheduler ADDRESS`` (e.g. one made by dask-jobqueue on
SLURM; workers then need the output directory on a shared file system).

Outputs are written atomically: papermill writes ``.<site>.partial.ipynb``
and only a finished run is renamed to ``<site>.ipynb`` (a failed run to
``<site>.failed.ipynb``), followed by a per-site status record
``.status/<site>.json``. A site counts as done when both exist and the
record's parameters equal this run's, so a rerun after a crash or a kill
executes only the unfinished sites (``--force`` reruns all). ``manifest.json``
gathers the records (parameters, status, duration, error, package version,
git commit) and is rewritten after every site.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from mdpl.errors import ConfigError
from mdpl.io import atomic_write_text as _atomic_write_text
from mdpl.io import check_output_dir, safe_name

MANIFEST = "manifest.json"
STATUS_DIR = ".status"


# --------------------------------------------------------------------------- helpers

def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: this package), '+dirty' if modified."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty else "")


@contextlib.contextmanager
def kernel_environment(threads: int | None = None):
    """Environment for executing notebooks: no progress bars, Agg backend, no tqdm widget warning.

    Kernels inherit this process's environment, so set it around papermill
    calls and restore it after. ``threads``: also cap the kernels' OpenMP/BLAS
    threads (kernels that run side by side; None leaves them as they are).
    """
    from mdpl.workers import THREAD_VARS

    keys = ("TQDM_DISABLE", "MPLBACKEND", "PYTHONWARNINGS", *THREAD_VARS)
    old = {k: os.environ.get(k) for k in keys}
    warn = "ignore:IProgress not found"  # tqdm.auto in a kernel without ipywidgets
    os.environ.update({"TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
                       "PYTHONWARNINGS": ",".join(w for w in (old["PYTHONWARNINGS"], warn) if w)})
    if threads is not None:
        os.environ.update({k: str(int(threads)) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def load_notebook_json(path: str | os.PathLike) -> str:
    """The notebook at ``path`` (``.ipynb`` or a jupytext ``.py``) as nbformat JSON text."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: notebook not found")
    try:
        import jupytext
        import nbformat

        nb = jupytext.read(p) if p.suffix in (".py", ".md") else nbformat.read(p, as_version=4)
    except Exception as e:  # malformed file: name it
        raise ConfigError(f"{p}: cannot read notebook ({e})") from None
    if "kernelspec" not in nb.metadata:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


def site_parameter(nb_json: str, notebook: str | os.PathLike) -> str:
    """Which parameter carries the site: 'site' (a string) or 'sites' (a one-element list)."""
    import nbformat

    nb = nbformat.reads(nb_json, as_version=4)
    tagged = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not tagged:
        raise ConfigError(f"{notebook}: no cell tagged 'parameters' (papermill needs one)")
    import ast

    names: set[str] = set()
    for cell in tagged:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError as e:
            raise ConfigError(f"{notebook}: parameters cell is not valid Python ({e})") from None
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names |= {t.id for t in targets if isinstance(t, ast.Name)}
    for name in ("site", "sites"):
        if name in names:
            return name
    raise ConfigError(f"{notebook}: the parameters cell defines neither 'site' nor 'sites'")


def parse_value(text: str) -> Any:
    """A command-line parameter value as YAML (so 3, 0.5, true, [a, b] keep their types)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- one site (runs on a worker)

def execute_site(nb_json: str, site: str, parameters: dict, out_dir: str, *, kernel_name: str = "python3",
                 cwd: str | None = None, cell_timeout_s: float | None = None, meta: dict | None = None) -> dict:
    """Execute the notebook for one site; write output and status record atomically; return the record.

    Never raises for a notebook error: the record has ``status='failed'`` and
    the error, so other sites carry on.
    """
    import nbformat
    import papermill as pm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    site = safe_name(site)
    final = out / f"{site}.ipynb"
    failed = out / f"{site}.failed.ipynb"
    partial = out / f".{site}.partial.ipynb"
    record = {
        "site": site,
        "parameters": parameters,
        "status": "running",
        "output": str(final),
        "started": _now(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        **(meta or {}),
    }
    t0 = time.perf_counter()
    try:
        nb = nbformat.reads(nb_json, as_version=4)
        with kernel_environment():
            pm.execute_notebook(nb, str(partial), parameters=parameters, kernel_name=kernel_name,
                                progress_bar=False, log_output=False, cwd=cwd, execution_timeout=cell_timeout_s)
        os.replace(partial, final)
        if failed.exists():
            failed.unlink()
        record["status"] = "ok"
    except Exception as e:  # noqa: BLE001 - report any failure for this site, keep the others going
        ename = getattr(e, "ename", type(e).__name__)
        evalue = getattr(e, "evalue", str(e))
        cell = getattr(e, "exec_count", None)
        record["status"] = "failed"
        record["error"] = f"{ename}: {evalue}" + (f" (cell {cell})" if cell is not None else "")
        record["output"] = str(failed)
        if partial.exists():
            os.replace(partial, failed)
        if final.exists():  # an older success with other parameters is no longer valid
            final.unlink()
    record["finished"] = _now()
    record["duration_s"] = round(time.perf_counter() - t0, 3)
    _atomic_write_text(out / STATUS_DIR / f"{site}.json", json.dumps(record, indent=2, default=str))
    return record


# --------------------------------------------------------------------------- the batch

def site_done(out_dir: Path, site: str, parameters: dict) -> dict | None:
    """The status record of a finished, successful run of ``site`` with these parameters, else None."""
    rec_path = out_dir / STATUS_DIR / f"{site}.json"
    if not (out_dir / f"{site}.ipynb").is_file() or not rec_path.is_file():
        return None
    try:
        rec = json.loads(rec_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = json.loads(json.dumps(rec.get("parameters"), default=str)) == json.loads(json.dumps(parameters, default=str))
    return rec if rec.get("status") == "ok" and same else None


def write_manifest(out_dir: Path, header: dict, records: dict[str, dict]) -> Path:
    """Write ``manifest.json`` (header + one record per site) atomically."""
    path = out_dir / MANIFEST
    _atomic_write_text(path, json.dumps({**header, "updated": _now(), "sites": records}, indent=2, default=str))
    return path


def run_batch(
    notebook: str | os.PathLike,
    sites: list[str],
    *,
    params: dict | None = None,
    out_dir: str | os.PathLike | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    kernel_name: str = "python3",
    cell_timeout_s: float | None = None,
) -> dict:
    """Execute ``notebook`` once per site on Dask; return the manifest dict (also on disk).

    ``params`` are passed to every site; the site itself goes into the
    notebook's ``site`` (string) or ``sites`` (one-element list) parameter.
    """
    from mdpl import __version__

    if not sites:
        raise ConfigError("mdpl batch: give at least one site (--sites A B ...)")
    if len(set(sites)) != len(sites):
        raise ConfigError(f"mdpl batch: duplicate site(s) in --sites: {', '.join(sorted({s for s in sites if sites.count(s) > 1}))}")
    for s in sites:  # each becomes <out>/<site>.ipynb: never a path that leaves the output directory
        safe_name(s, what="--sites: site")
    nb_path = Path(notebook)
    nb_json = load_notebook_json(nb_path)
    site_key = site_parameter(nb_json, nb_path)
    from mdpl.config import default_data_dir

    out = check_output_dir(Path(out_dir) if out_dir else Path("runs") / "batch" / nb_path.stem,
                           data_dirs=[default_data_dir()])
    params = dict(params or {})
    header = {
        "notebook": str(nb_path.resolve()),
        "package_version": __version__,
        "git_commit": git_commit(),
        "scheduler": scheduler or "local",
        "created": _now(),
    }
    meta = {"package_version": __version__, "git_commit": header["git_commit"]}
    per_site = {s: {**params, site_key: s if site_key == "site" else [s]} for s in sites}

    records: dict[str, dict] = {}
    todo = []
    for s in sites:
        rec = None if force else site_done(out, s, per_site[s])
        if rec is not None:
            records[s] = {**rec, "status": "ok", "skipped": True}
        else:
            todo.append(s)
    write_manifest(out, header, records)
    if todo:
        records.update(_run_on_dask(nb_json, todo, per_site, out, header, records, scheduler=scheduler,
                                    n_workers=n_workers, kernel_name=kernel_name,
                                    cell_timeout_s=cell_timeout_s, meta=meta))
    manifest = {**header, "sites": {s: records[s] for s in sites}}
    write_manifest(out, header, manifest["sites"])
    return manifest


def _run_on_dask(nb_json, todo, per_site, out: Path, header, records, *, scheduler, n_workers, kernel_name,
                 cell_timeout_s, meta) -> dict:
    import logging

    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm.auto import tqdm

    results: dict[str, dict] = {}
    cwd = os.getcwd()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        n = n_workers or min(len(todo), os.cpu_count() or 1)
        cluster = LocalCluster(n_workers=max(1, n), threads_per_worker=1, processes=True,
                               dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        futures = {
            client.submit(execute_site, nb_json, s, per_site[s], str(out), kernel_name=kernel_name, cwd=cwd,
                          cell_timeout_s=cell_timeout_s, meta=meta, key=f"mdpl-batch-{s}-{time.time_ns()}",
                          pure=False): s
            for s in todo
        }
        bar = tqdm(total=len(futures), desc=f"mdpl batch ({len(todo)} sites)", unit="site")
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                rec = fut.result()
            except Exception as e:  # noqa: BLE001 - a worker died: report it, keep going
                rec = {"site": s, "parameters": per_site[s], "status": "failed",
                       "error": f"worker failed: {type(e).__name__}: {e}", **meta}
            results[s] = rec
            bar.update(1)
            bar.set_postfix_str(f"{s}: {rec['status']}")
            write_manifest(out, header, {**records, **results})
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


# --------------------------------------------------------------------------- CLI

def register(subparsers) -> None:
    p = subparsers.add_parser("batch", help="run a notebook once per site with papermill on Dask",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("notebook", help="notebook to run (.ipynb or jupytext .py)")
    p.add_argument("--sites", nargs="+", required=True, metavar="SITE", help="one execution per site")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="notebook parameter for every site (VALUE parsed as YAML); repeatable")
    p.add_argument("--out", default=None, help="output directory (default runs/batch/<notebook name>)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of an existing Dask scheduler (default: a local cluster)")
    p.add_argument("--workers", type=int, default=None, help="local workers (default min(sites, cores))")
    p.add_argument("--force", action="store_true", help="rerun sites that already finished")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="S",
                   help="fail a site whose cell runs longer than S seconds")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    params = {k: parse_value(v) for k, v in args.parameter}
    manifest = run_batch(args.notebook, args.sites, params=params, out_dir=args.out, scheduler=args.scheduler,
                         n_workers=args.workers, force=args.force, kernel_name=args.kernel,
                         cell_timeout_s=args.cell_timeout)
    failed = {s: r for s, r in manifest["sites"].items() if r.get("status") != "ok"}
    for s, r in manifest["sites"].items():
        state = "skipped (done)" if r.get("skipped") else r.get("status")
        extra = f" — {r.get('error')}" if r.get("status") != "ok" else f" in {r.get('duration_s', 0):.1f} s"
        print(f"{s}: {state}{extra if not r.get('skipped') else ''}")
    out = Path(args.out) if args.out else Path("runs") / "batch" / Path(args.notebook).stem
    print(f"manifest: {out / MANIFEST}")
    if failed:
        print(f"mdpl batch: {len(failed)} of {len(manifest['sites'])} site(s) failed: {', '.join(failed)}")
        return 1
    return 0
