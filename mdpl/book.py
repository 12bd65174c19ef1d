"""``mdpl book``: run the study once, execute every chapter notebook, build the Jupyter Book.

What ``make book`` runs. Steps:

1. resolve the configuration (``--mode``, ``--config``) and save it as
   ``book/generated/config.yaml`` for the chapters;
2. run the study once (:func:`mdpl.study.run_study`, cached stage by stage in
   ``--out``; with no data the twin experiment on the synthetic default;
   ``--study-dir`` reuses a finished study as it is);
3. on real data, build the benchmark table against PLUMBER2 peers, empirical
   models and the LSTM (``benchmark/benchmark.csv`` in the study directory);
4. run (or reuse) the leave-one-site-out transfer experiment (:mod:`mdpl.transfer`);
5. write ``generated/banner.md`` (real or synthetic data, shown on every page);
6. execute each chapter listed in ``book/_toc.yml`` as ``generated/NN_name``
   from ``notebooks/NN_name.py`` with papermill (kernel ``python3``, progress
   bars off), writing ``book/generated/NN_name.ipynb`` atomically;

with ``--jobs`` >= 2 (default on two cores or more) steps 2-6 overlap on
worker lanes (:mod:`mdpl.workers`): the study's independent stages side by
side, the transfer in the study's second lane once its surrogate is trained,
the benchmark in this process while the chapters that do not read it
execute, chapters two at a time;
7. write ``generated/reproducibility.md`` (environment, versions, hardware,
   run times, seeds) and run ``jupyter-book build book/`` (the book never
   re-executes notebooks); print where the HTML is.

The table of contents is the single list of chapters: a chapter not in
``_toc.yml`` is neither executed nor built.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from mdpl import workers
from mdpl.errors import ConfigError, MdplError

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOK_DIR = REPO_ROOT / "book"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
GENERATED = "generated"


def toc_files(book_dir: str | os.PathLike = BOOK_DIR) -> list[str]:
    """Every ``file`` entry of ``_toc.yml`` (root first), in reading order."""
    import yaml

    path = Path(book_dir) / "_toc.yml"
    if not path.is_file():
        raise ConfigError(f"{path}: table of contents not found")
    toc = yaml.safe_load(path.read_text()) or {}
    files = [toc["root"]] if "root" in toc else []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(str(node["file"]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


def chapters(book_dir: str | os.PathLike = BOOK_DIR, notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR) -> list[tuple[str, Path]]:
    """``(name, source notebook)`` for every ``generated/NN_name`` chapter in the toc."""
    out = []
    for f in toc_files(book_dir):
        if not f.startswith(f"{GENERATED}/") or f == f"{GENERATED}/reproducibility":
            continue
        name = f.split("/", 1)[1]
        src = Path(notebooks_dir) / f"{name}.py"
        if not src.is_file():
            raise ConfigError(f"{Path(book_dir) / '_toc.yml'}: chapter {f} has no notebook {src}")
        out.append((name, src))
    return out


def execute_notebook(src: Path, dest: Path, parameters: dict, *, kernel_name: str = "python3",
                     cwd: str | os.PathLike | None = None) -> float:
    """Execute jupytext notebook ``src`` into ``dest`` (atomically); return wall seconds.

    A failing notebook raises :class:`mdpl.MdplError` naming it, the cell and
    the error; its partial output is kept as ``dest`` with suffix ``.failed.ipynb``.
    """
    import jupytext
    import nbformat
    import papermill as pm

    nb = jupytext.read(src)
    links = run_links(src.name)
    if links:  # after the title cell, so the page keeps its heading
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0,
                        nbformat_markdown_cell(links))
    fold_code(nb)
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("jupytext", {})["source"] = src.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f"_{dest.stem}.partial.ipynb")
    t0 = time.perf_counter()
    try:
        pm.execute_notebook(nb, str(partial), parameters=parameters, kernel_name=kernel_name,
                            progress_bar=False, log_output=False, cwd=str(cwd or REPO_ROOT))
    except Exception as e:  # noqa: BLE001 - turn any failure into one line naming the notebook
        failed = dest.with_name(f"_{dest.stem}.failed.ipynb")
        if partial.exists():
            os.replace(partial, failed)
        ename = getattr(e, "ename", type(e).__name__)
        evalue = getattr(e, "evalue", str(e))
        cell = getattr(e, "exec_count", None)
        where = f" in cell {cell}" if cell is not None else ""
        raise MdplError(f"{src}: notebook failed{where}: {ename}: {evalue} (partial output: {failed})") from None
    executed = nbformat.read(partial, as_version=4)
    fold_code(executed)  # papermill's injected-parameters cell too
    nbformat.write(executed, partial)
    os.replace(partial, dest)
    return time.perf_counter() - t0


def needs_transfer(src: Path) -> bool:
    """Whether chapter notebook ``src`` reads the transfer experiment (:mod:`mdpl.transfer`): it waits for it."""
    text = Path(src).read_text(encoding="utf-8")
    return "mdpl.transfer" in text or "transfer_table" in text


def needs_benchmark(src: Path) -> bool:
    """Whether chapter notebook ``src`` reads the benchmark table (``benchmark/benchmark.csv``): it waits for it."""
    text = Path(src).read_text(encoding="utf-8")
    return "benchmark_table" in text or "benchmark.csv" in text


def _chapter_job(name: str, src: Path, dest: Path, parameters: dict) -> tuple[str, float]:
    """One chapter in a worker lane: ``(name, wall seconds)``; a failure raises naming the notebook."""
    return name, execute_notebook(src, dest, parameters)


def execute_chapters(todo: list[tuple[str, Path]], gen: Path, params: dict, *, lanes=None, jobs: int = 1,
                     gates=()) -> tuple[dict[str, float], dict]:
    """Execute every ``(name, source)`` chapter into ``gen/name.ipynb``; ``({name: wall s}, {gate: its value})``.

    ``gates``: ``(name, needs, wait)`` triples: the chapters for which
    ``needs(source)`` holds start only after ``wait()`` has returned (it
    runs the benchmark in this process, or waits for the transfer's lane).
    Without ``lanes`` (a :func:`mdpl.workers.pool`) every gate first, then
    the chapters one after another, in order. With lanes, the chapters no
    gate holds back start at once, as many at a time as the pool has
    workers, while this process waits on the gates in turn. Every chapter
    runs even when another fails; then one :class:`mdpl.MdplError` names each
    chapter that failed and why. The executed notebooks are the same either
    way (each runs in a kernel of its own).
    """
    from concurrent.futures import as_completed

    from tqdm.auto import tqdm

    if lanes is None:
        values = {g: wait() for g, _, wait in gates}
        out = {}
        for name, src in tqdm(todo, desc="executing chapters", unit="notebook"):
            out[name] = execute_notebook(src, gen / f"{name}.ipynb", params)
        return out, values
    held = {name: [g for g, needs, _ in gates if needs(src)] for name, src in todo}
    futures = {lanes.submit(_chapter_job, n, s, gen / f"{n}.ipynb", params): n for n, s in todo if not held[n]}
    values: dict = {}
    try:
        for g, _, wait in gates:
            values[g] = wait()
            ready = [(n, s) for n, s in todo if held[n] and all(x in values for x in held[n])]
            for n, s in ready:
                futures[lanes.submit(_chapter_job, n, s, gen / f"{n}.ipynb", params)] = n
                held[n] = []
    except BaseException:
        for f in futures:
            f.cancel()
        raise
    done: dict[str, float] = {}
    failed: dict[str, str] = {}
    for f in tqdm(as_completed(futures), total=len(futures), desc=f"executing chapters ({jobs} at a time)",
                  unit="notebook"):
        name = futures[f]
        try:
            done[name] = f.result()[1]
        except Exception as e:  # noqa: BLE001 - every chapter's failure is reported, none lost
            failed[name] = str(e) or type(e).__name__
    if failed:
        raise MdplError("; ".join(f"chapter {n} failed: {failed[n]}" for n, _ in todo if n in failed))
    return {n: done[n] for n, _ in todo}, values


def _transfer_lane_timed(cfg, out: Path) -> dict[str, float]:
    """The real-data transfer experiment in the study's second lane: ``{'transfer_s': wall s}``."""
    return {"transfer_s": ensure_transfer(None, cfg, out, "real")}


def _transfer_lane(cfg, out: Path, source: str) -> float:
    """:func:`ensure_transfer` in a worker lane (the study's sites from its ensemble store)."""
    return ensure_transfer(None, cfg, out, source)


#: cell tags that already decide how a cell's source shows
_SOURCE_TAGS = {"hide-input", "remove-input", "remove-cell", "hide-cell"}


def fold_code(nb) -> None:
    """Tag every code cell ``hide-input``: the page reads as a paper (narrative, figures, tables), the code one click away.

    Cells that already carry a source-display tag keep it. Jupyter Book
    renders the tag as a folded "show code cell source" toggle above the outputs.
    """
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = list(cell.metadata.get("tags", []))
        if not _SOURCE_TAGS & set(tags):
            cell.metadata["tags"] = [*tags, "hide-input"]


def repository(book_dir: str | os.PathLike = BOOK_DIR) -> tuple[str, str] | None:
    """(GitHub ``owner/name``, branch) from the book's ``repository:`` setting; None if it is not on GitHub."""
    cfg = yaml.safe_load((Path(book_dir) / "_config.yml").read_text()) or {}
    repo = cfg.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/"):
        return None
    return url.removeprefix("https://github.com/"), str(repo.get("branch", "main"))


def run_links(notebook_name: str, book_dir: str | os.PathLike = BOOK_DIR) -> str:
    """The 'run this chapter yourself' line: Binder on the jupytext source (not the executed copy, which is
    not in the repository), the source path, and the batch command."""
    repo = repository(book_dir)
    src = f"notebooks/{notebook_name}"
    parts = []
    if repo:
        name, branch = repo
        parts.append(f"[launch on Binder](https://mybinder.org/v2/gh/{name}/{branch}?urlpath=lab/tree/{src})")
    parts.append(f"source `{src}` (a jupytext notebook: open it as a notebook in Jupyter)")
    parts.append(f"one run per site: `mdpl batch {src} --sites SITE ...`")
    return "**Run this chapter yourself:** " + " · ".join(parts) + "."


def nbformat_markdown_cell(text: str):
    import nbformat

    return nbformat.v4.new_markdown_cell(text)


def _same_config(cfg, path: Path) -> bool:
    """Whether the configuration saved at ``path`` equals ``cfg`` (ignoring out_dir)."""
    import yaml

    from mdpl.config import config_to_dict

    if not path.is_file():
        return False
    saved = yaml.safe_load(path.read_text()) or {}
    now = config_to_dict(cfg)
    saved.pop("out_dir", None)
    now.pop("out_dir", None)
    return saved == now


def ensure_study(cfg, out: Path, *, study_dir: str | os.PathLike | None = None, jobs: int = 1):
    """The finished study the chapters read: ``(StudyResult, data source, wall seconds)``.

    ``study_dir``: an existing study, loaded as is (nothing recomputed).
    Otherwise real data run :func:`mdpl.study.run_study` (cached stage by
    stage in ``out``); with no data the embedded synthetic default runs the
    twin experiment (observations = land model at hidden parameters plus
    noise), reused when ``out`` already holds one made with this configuration.
    ``jobs``: worker lanes for the real-data study's independent stages
    (:func:`mdpl.study.run_study`).
    """
    from mdpl.presentation import study_source
    from mdpl.study import load_study, run_study
    from mdpl.twin import twin_experiment

    t0 = time.perf_counter()
    if study_dir is not None:
        study = load_study(study_dir)
        return study, study_source(study), time.perf_counter() - t0
    from mdpl.data import study_sites

    sites, source = study_sites(cfg)
    if source == "synthetic":
        if (out / "twin_summary.json").is_file() and _same_config(cfg, out / "config.yaml"):
            study = load_study(out)
        else:
            twin_experiment(cfg, out, datasets=sites)
            study = load_study(out)
    else:
        del sites
        # the transfer needs only the multi-task surrogate: with lanes it runs in the study's second lane
        after = [(_transfer_lane_timed, (cfg, out))] if "mdpl" in cfg.calibration.sources else []
        study = run_study(cfg, out, jobs=jobs, lane_after=after)
    return study, study_source(study), time.perf_counter() - t0


BENCHMARK_CSV = Path("benchmark") / "benchmark.csv"


def ensure_benchmark(study, cfg, out: Path, source: str) -> float:
    """Write ``out/benchmark/benchmark.csv`` (:func:`mdpl.baselines.table.build_benchmark_table`) for real data.

    Peers (PLUMBER2 LSMs), empirical benchmarks and the LSTM were all scored
    against real towers, so on synthetic or directly supplied data nothing is
    written and chapter 5 ranks the study's own parameter sources only. The
    study's sources on the PLUMBER2 basis come from the half-hourly series its
    evaluation kept (no second land-model run).
    Reused while the study's metrics are unchanged. Returns wall seconds.
    """
    import hashlib

    t0 = time.perf_counter()
    if source != "real":
        return 0.0
    from mdpl.batch import _atomic_write_text
    from mdpl.baselines.peers import default_peers_dir
    from mdpl.baselines.table import build_benchmark_table
    from mdpl.data import load_sites

    csv = out / BENCHMARK_CSV
    stamp = csv.with_suffix(".fingerprint")
    fp = hashlib.sha256(((out / "metrics.json").read_bytes() + f"{cfg.mode}{cfg.seed} lsm".encode())).hexdigest()[:16]
    if csv.is_file() and stamp.is_file() and stamp.read_text().strip() == fp:
        return time.perf_counter() - t0
    datasets = {str(d.attrs["site"]): d for d in load_sites(cfg.data.data_dir, list(study.sites))}
    peers = default_peers_dir() if cfg.data.data_dir is None else Path(cfg.data.data_dir) / "reference" / "peers"
    table = build_benchmark_table(datasets, study_dir=out, peers_dirs=[peers] if peers and Path(peers).is_dir() else [],
                                  mode=cfg.mode, seed=cfg.seed, include_lstm=True, include_lsm=True,
                                  min_measured_fraction=cfg.data.min_measured_fraction)
    _atomic_write_text(csv, table.to_csv(index=False, float_format="%.6g"))
    _atomic_write_text(stamp, fp)
    return time.perf_counter() - t0


def ensure_transfer(study, cfg, out: Path, source: str) -> float:
    """Run (or reuse) the leave-one-site-out transfer experiment (:mod:`mdpl.transfer`) for chapter 6.

    ``study``: the finished study (its sites), or None for the sites of its
    ensemble store (a worker lane, before the study has finished).

    Needs the study's forcing: the real files, or the synthetic default the
    twin ran on. A study on directly supplied datasets is reused only if its
    transfer results already exist. Returns wall seconds.
    """
    from mdpl.transfer import groups_of, loso_transfer

    t0 = time.perf_counter()
    if not (out / "surrogates" / "multitask").is_dir():
        return 0.0
    from mdpl.ensemble import EnsembleStore

    store = EnsembleStore.open(out / "ensemble")
    features = store.features
    if not groups_of(features):
        return 0.0
    sites = list(study.sites) if study is not None else list(store.sites)
    if source == "real":
        from mdpl.data import load_sites

        datasets = load_sites(cfg.data.data_dir, sites)
    elif source == "synthetic" and not (out / "transfer" / "stage.json").is_file():
        from mdpl.data.synthetic import default_sites

        datasets = default_sites(years=cfg.data.synthetic_years, seed=cfg.seed, sites=sites)
    else:
        datasets = []  # reuse what is there (or nothing, for directly supplied data)
    try:
        loso_transfer(cfg, out, datasets)
    except ConfigError:
        if datasets:
            raise
    return time.perf_counter() - t0


def run_book(*, mode: str | None = None, config: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
             book_dir: str | os.PathLike = BOOK_DIR, notebooks_dir: str | os.PathLike = NOTEBOOKS_DIR,
             build: bool = True, strict: bool = False, only: list[str] | None = None,
             command: str | None = None, study_dir: str | os.PathLike | None = None, jobs: int | None = None) -> dict:
    """Do all of ``mdpl book``; return ``{'html': index path or None, 'timings': {...}, 'source': ...}``.

    ``jobs``: worker lanes for independent work (:mod:`mdpl.workers`; default
    :func:`mdpl.workers.default_jobs`): the study's independent stages, the
    transfer beside the benchmark, chapters ``jobs`` at a time. 1 runs
    everything in order in this process. The outputs are the same either way.
    """
    from mdpl.batch import _atomic_write_text, git_commit, kernel_environment
    from mdpl.config import config_to_dict, default_data_dir, load_config, save_config
    from mdpl.presentation import data_banner
    from mdpl.reproducibility import environment_info, reproducibility_markdown

    from mdpl.io import check_output_dir

    book = Path(book_dir)
    jobs = workers.default_jobs() if jobs is None else workers.check_jobs(jobs)
    cfg = load_config(config, mode=mode)  # mode None: what the YAML (or the default) says
    todo = chapters(book, notebooks_dir)  # every check before anything is written
    if only:
        unknown = sorted(set(only) - {n for n, _ in todo})
        if unknown:
            raise ConfigError(f"--only: not chapters of {book / '_toc.yml'}: {', '.join(unknown)}")
        todo = [(n, s) for n, s in todo if n in only]
    if study_dir:
        out_dir = Path(study_dir)
        if not out_dir.is_dir():
            raise ConfigError(f"--study-dir {out_dir}: directory not found (a finished `mdpl calibrate --out` directory)")
        if not (out_dir / "metrics.json").is_file() or not (out_dir / "study.json").is_file():
            raise ConfigError(f"--study-dir {out_dir}: no finished study here (run `mdpl calibrate --out {out_dir}` first)")
    else:
        out_dir = check_output_dir(out if out else REPO_ROOT / "runs" / f"book-{cfg.mode}",
                                   data_dirs=[cfg.data.data_dir, default_data_dir()])
    cfg.out_dir = str(out_dir)
    cfg_path = save_config(cfg, book / GENERATED / "config.yaml")  # what the chapters load

    timings: dict[str, float] = {}
    study, source, timings["study (run or load from cache)"] = ensure_study(cfg, out_dir, study_dir=study_dir, jobs=jobs)
    sites = list(study.sites)
    gen = book / GENERATED
    params = {
        "sites": list(cfg.data.sites), "mode": cfg.mode, "device": cfg.device, "seed": cfg.seed,
        "data_dir": cfg.data.data_dir or "", "out_dir": str(out_dir.resolve()), "config": str(cfg_path.resolve()),
    }
    banner = data_banner(source, sites, cfg.data.data_dir)
    _atomic_write_text(gen / "banner.md", banner)
    with kernel_environment(threads=1 if jobs > 1 else None), \
            (workers.pool(jobs) if jobs > 1 else contextlib.nullcontext()) as lanes:
        # with lanes: the transfer in one (a cache hit when the study's second lane ran it), the benchmark in
        # this process, the chapters that read neither in the lanes meanwhile
        transfer_job = lanes.submit(_transfer_lane, cfg, out_dir, source) if lanes is not None else None
        gates = [("benchmark", needs_benchmark, lambda: ensure_benchmark(study, cfg, out_dir, source)),
                 ("transfer", needs_transfer,
                  transfer_job.result if transfer_job is not None else lambda: ensure_transfer(study, cfg, out_dir, source))]
        chapter_s, gate_s = execute_chapters(todo, gen, params, lanes=lanes, jobs=jobs, gates=gates)
    timings["benchmark (run or load from cache)"] = gate_s["benchmark"]
    timings["transfer (run or load from cache)"] = gate_s["transfer"]
    timings.update({f"study stage {k.removesuffix('_s')}": float(v) for k, v in study.timings.items()})
    timings.update({f"chapter {n}": v for n, v in chapter_s.items()})
    cmd = command or (f"mdpl book --mode {cfg.mode}" + (f" --config {config}" if config else ""))
    page = reproducibility_markdown(env=environment_info(), config=config_to_dict(cfg), timings=timings,
                                    data_source=source, sites=sites, git_commit=git_commit(), command=cmd,
                                    banner=banner)
    _atomic_write_text(gen / "reproducibility.md", page)
    html = None
    if build:
        t0 = time.perf_counter()
        html = build_html(book, strict=strict)
        timings["book build"] = time.perf_counter() - t0
    return {"html": html, "timings": timings, "source": source, "sites": sites, "out": str(out_dir)}


def build_html(book_dir: str | os.PathLike = BOOK_DIR, *, strict: bool = False) -> Path:
    """Run ``jupyter-book build --all BOOK_DIR`` (``-W --keep-going`` when strict); return index.html.

    ``--all`` rebuilds every page, so pages that only include the regenerated
    banner are never left stale.
    """
    exe = Path(sys.executable).parent / "jupyter-book"
    cmd = [str(exe) if exe.exists() else "jupyter-book", "build", "--all", str(book_dir)]  # --all: banner changes
    if strict:
        cmd += ["-W", "--keep-going"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise MdplError(f"{shlex.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return Path(book_dir) / "_build" / "html" / "index.html"


def register(subparsers) -> None:
    p = subparsers.add_parser("book", help="run the study, execute the notebooks, build the Jupyter Book",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("quick", "full"), default=None,
                   help="study size (default: the config's mode, quick without a config)")
    p.add_argument("--config", default=None, help="study configuration YAML (default: built-in defaults)")
    p.add_argument("--out", default=None, help="study output/cache directory (default runs/book-<mode>)")
    p.add_argument("--book-dir", default=str(BOOK_DIR), help="book source directory (default book/)")
    p.add_argument("--study-dir", default=None, metavar="DIR",
                   help="build from this finished study (e.g. from `mdpl calibrate --out DIR`) without running one")
    p.add_argument("--only", nargs="+", default=None, metavar="CHAPTER", help="execute only these chapters")
    p.add_argument("--no-build", action="store_true", help="execute notebooks but do not build the HTML")
    p.add_argument("--strict", action="store_true", help="fail on any Sphinx warning (-W)")
    p.add_argument("--jobs", default=None, metavar="N",
                   help=f"independent stages and chapters N at a time in worker processes, one torch thread each "
                        f"(default ${workers.JOBS_ENV} or min(2, cores); 1: all in order in this process)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cmd = "mdpl book " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else None
    res = run_book(mode=args.mode, config=args.config, out=args.out, book_dir=args.book_dir, build=not args.no_build,
                   strict=args.strict, only=args.only, command=cmd, study_dir=args.study_dir,
                   jobs=args.jobs)
    for k, v in res["timings"].items():
        print(f"{k}: {v:.1f} s")
    print(f"data: {res['source']} ({', '.join(res['sites'])}); study outputs in {res['out']}")
    if res["html"]:
        print(f"book: {Path(res['html']).resolve()}")
    return 0
