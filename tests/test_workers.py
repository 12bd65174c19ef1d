"""Work on two lanes (:mod:`mdpl.workers`): the same study and the same chapters as in one process, errors kept."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import numpy as np
import pandas as pd
import pytest

from mdpl.errors import ConfigError, MdplError

#: days of synthetic forcing per site: short, the land model steps half-hourly
DAYS = 30


def _tiny_cfg():
    from mdpl.config import config_from_dict

    return config_from_dict({
        "mode": "quick", "seed": 0, "device": "cpu",
        "lsm": {"spinup_max_years": 0},
        "ensemble": {"n_members": 6, "batch_size": 6},
        "surrogate": {"epochs": 2, "hidden_size": 8, "state_size": 4, "patience": 0, "window_days": 0},
        "calibration": {"sources": ["default", "mdpl", "dpl", "direct"], "quick_epochs": 4, "screen": False,
                        "direct_quick_epochs": 1, "direct_quick_days": 5, "candidates": 1},
    })


def test_jobs_must_be_a_positive_whole_number(monkeypatch):
    from mdpl.workers import check_jobs, default_jobs

    assert check_jobs("2") == 2 and check_jobs(1) == 1
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(ConfigError, match=r"--jobs: expected a whole number of parallel jobs >= 1"):
            check_jobs(bad)
    monkeypatch.setenv("MDPL_JOBS", "3")
    assert default_jobs() == 3
    monkeypatch.setenv("MDPL_JOBS", "none")
    with pytest.raises(ConfigError, match=r"\$MDPL_JOBS: expected a whole number"):
        default_jobs()
    monkeypatch.delenv("MDPL_JOBS")
    assert 1 <= default_jobs() <= 2


def test_cli_rejects_bad_jobs_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "mdpl", "book", "--jobs", "0", "--no-build", "--only", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "--jobs: expected a whole number of parallel jobs >= 1, got '0'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_study_on_two_lanes_equals_the_study_in_one_process(tmp_path):
    """Direct beside the ensemble, the multitask surrogate and MdPL beside the single-task one and dPL:
    the same parameters and scores as everything in order, and the stages' timings say where they ran."""
    from mdpl.data.synthetic import site_twin
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.study import run_study
    from mdpl.twin import hidden_truth, make_observations

    cfg = _tiny_cfg()
    forcing = [site_twin(s, years=DAYS / 365.25, start="2005-05-01") for s in ("DK-Fou", "ES-ES2")]
    model = EmbeddedLSM(cfg.lsm, device="cpu")
    datasets = make_observations(model, forcing, hidden_truth(model.parameter_space, len(forcing), seed=1), seed=1)[0]
    one = run_study(cfg, tmp_path / "one", datasets=datasets, progress=False, check_verdicts=False, jobs=1)
    two = run_study(cfg, tmp_path / "two", datasets=datasets, progress=False, check_verdicts=False, jobs=2)
    cols = ["site", "flux", "period", "scale", "source"]
    a = one.records.sort_values(cols).reset_index(drop=True)
    b = two.records.sort_values(cols).reset_index(drop=True)
    assert set(a.source) == {"default", "mdpl", "dpl", "direct"}
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-9)
    pd.testing.assert_frame_equal(one.parameters, two.parameters, check_exact=False, rtol=1e-6)
    for src in ("mdpl", "dpl", "direct"):
        np.testing.assert_allclose(one.calibrations[src].params, two.calibrations[src].params, rtol=1e-6)
    # the stages' timings are those of the lanes that ran them, not of the cache loads that followed
    t = json.loads((tmp_path / "two" / "study.json").read_text())["timings"]
    assert {"ensemble_s", "calibrate_direct_s", "surrogate_multitask_s", "calibrate_mdpl_s", "calibrate_dpl_s"} <= set(t)
    assert t["calibrate_direct_s"] > 0.5 and t["calibrate_mdpl_s"] > 0.1


def _notebook(path, body: str) -> None:
    path.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\n' + body + "\n")


def _outputs(path) -> list:
    nb = nbformat.read(path, as_version=4)
    return [[o.get("text", o.get("data", {}).get("text/plain")) for o in c.get("outputs", [])]
            for c in nb.cells if c.cell_type == "code"]


def test_chapters_two_at_a_time_equal_one_at_a_time_and_failures_name_their_chapter(tmp_path):
    from mdpl.book import execute_chapters
    from mdpl.workers import pool

    src = tmp_path / "src"
    src.mkdir()
    names = ["01_a", "02_b"]
    for k, n in enumerate(names):
        _notebook(src / f"{n}.py", f"print('chapter {n}', x * {k + 2})")
    todo = [(n, src / f"{n}.py") for n in names]
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    t1, _ = execute_chapters(todo, serial, {"x": 5})
    with pool(2) as lanes:
        t2, _ = execute_chapters(todo, parallel, {"x": 5}, lanes=lanes, jobs=2)
    assert list(t1) == list(t2) == names
    for n in names:
        assert _outputs(serial / f"{n}.ipynb") == _outputs(parallel / f"{n}.ipynb")
    assert "chapter 02_b 15" in str(_outputs(parallel / "02_b.ipynb"))

    _notebook(src / "02_b.py", 'raise ValueError(f"broken on purpose {x}")')
    broken = tmp_path / "broken"
    with pool(2) as lanes, pytest.raises(MdplError) as err:
        execute_chapters(todo, broken, {"x": 5}, lanes=lanes, jobs=2)
    msg = str(err.value)
    assert msg.startswith("chapter 02_b failed: ") and "02_b.py: notebook failed in cell" in msg
    assert "ValueError: broken on purpose 5" in msg and "01_a" not in msg
    # the other chapter still ran to the end; the broken one left its partial output, no page
    assert (broken / "01_a.ipynb").is_file()
    assert not (broken / "02_b.ipynb").exists() and (broken / "_02_b.failed.ipynb").is_file()


def test_chapters_wait_only_for_what_they_read(tmp_path):
    """A chapter reading the transfer starts once the transfer's lane is done, one reading the benchmark once
    the benchmark (run in this process meanwhile) is written; the others do not wait. In the book: 05 and 06."""
    import time

    from mdpl.book import chapters, execute_chapters, needs_benchmark, needs_transfer
    from mdpl.workers import pool

    book = {n: s for n, s in chapters()}
    assert [n for n, s in book.items() if needs_transfer(s)] == ["06_transfer"]
    assert [n for n, s in book.items() if needs_benchmark(s)] == ["05_benchmark"]
    src = tmp_path / "src"
    src.mkdir()
    marker, bench = tmp_path / "transfer_done", tmp_path / "benchmark.csv"
    _notebook(src / "01_a.py", "print('a')")
    _notebook(src / "05_b.py", f"import pathlib\nprint('benchmark_table', pathlib.Path({str(bench)!r}).is_file())")
    _notebook(src / "06_t.py", f"import pathlib\nprint('transfer_table', pathlib.Path({str(marker)!r}).is_file())")
    todo = [("01_a", src / "01_a.py"), ("05_b", src / "05_b.py"), ("06_t", src / "06_t.py")]

    def benchmark():
        time.sleep(1.0)
        bench.write_text("x")
        return 1.0

    with pool(2) as lanes:
        job = lanes.submit(_slow_transfer, str(marker))
        out, values = execute_chapters(todo, tmp_path / "gen", {"x": 1}, lanes=lanes, jobs=2,
                                       gates=[("benchmark", needs_benchmark, benchmark),
                                              ("transfer", needs_transfer, job.result)])
    assert list(out) == ["01_a", "05_b", "06_t"] and values == {"benchmark": 1.0, "transfer": 3.0}
    assert "benchmark_table True" in str(_outputs(tmp_path / "gen" / "05_b.ipynb"))
    assert "transfer_table True" in str(_outputs(tmp_path / "gen" / "06_t.ipynb"))


def _slow_transfer(marker: str) -> float:
    import time
    from pathlib import Path

    time.sleep(3.0)
    Path(marker).write_text("done")
    return 3.0


def test_a_failure_in_the_block_stops_the_lanes_instead_of_waiting(tmp_path):
    import time

    from mdpl.workers import pool

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="caller failed"):
        with pool(1) as lane:
            job = lane.submit(time.sleep, 60)
            while not job.running():
                time.sleep(0.05)
            raise RuntimeError("caller failed")
    assert time.perf_counter() - t0 < 40  # not the 60 s the worker had left
