"""benchmarks/: RESULTS.md sections are replaced in place; the surrogate bench measures both routes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import report  # noqa: E402


def test_write_section_replaces_only_its_own(tmp_path):
    p = tmp_path / "RESULTS.md"
    p.write_text("# Benchmark results\n\n## Land model throughput\n\nkeep me\n\n## Surrogate vs land model\n\nold\n")
    report.write_section("Surrogate vs land model", "new numbers", "python x.py", path=p)
    report.write_section("Book build", "book numbers", "mdpl bench book", path=p)
    text = p.read_text()
    assert "keep me" in text and "old" not in text and "new numbers" in text and "book numbers" in text
    assert text.count("## Surrogate vs land model") == 1
    assert "- hardware: " in text and "- command: `python x.py`" in text
    # CPU figures are labelled as such unless a GPU is in use
    import torch

    assert ("GPU:" in report.hardware()) == torch.cuda.is_available()


def test_surrogate_bench_measures_both_routes_side_by_side():
    pytest.importorskip("mdpl.ils.model")
    import bench_surrogate

    r = bench_surrogate.run(days=2, n_sets=2)
    assert r["members"] == 10 and r["lsm_days"] == r["surrogate_days"] == 2
    for k in ("lsm_no_spinup_s", "lsm_with_spinup_s", "multitask_s", "singletask_s"):
        assert r[k] > 0
    assert r["ratio_lsm_over_multitask"] == pytest.approx(r["lsm_no_spinup_s"] / r["multitask_s"])
    assert "x" in bench_surrogate.render(r)


def test_book_bench_reports_stages_slowest_first_and_the_remainder():
    import bench_book

    r = {"total_s": 100.0, "stages": {"chapter 01": 20.0, "study (run or load from cache)": 60.0, "book build": 10.0},
         "source": "real", "sites": ["DK-Fou"], "mode": "quick"}
    text = bench_book.render(r)
    lines = [ln for ln in text.splitlines() if ln.startswith("| ") and "stage" not in ln]
    assert lines[0].startswith("| study") and lines[1].startswith("| chapter 01") and lines[2].startswith("| book build")
    assert "| other" in lines[3] and "| 10 |" in lines[3] and "100 s end to end" in text


def test_calibration_bench_reports_cost_to_equal_skill():
    import bench_calibration

    r = {"days": 120, "site": "CN-Cng", "members": 16, "target": 10.0, "hardware": "cpu",
         "rows": {"default": {"evals": 0, "wall_s": 0.0, "rmse": 20.0},
                  "mdpl": {"evals": 16, "wall_s": 50.0, "rmse": 10.0},
                  "direct": {"evals": 24, "wall_s": 100.0, "rmse": 9.0},
                  "classical": {"evals": 64, "wall_s": 30.0, "rmse": 12.0}},
         "reach": {"direct": {"evals": 24, "wall_s": 100.0, "rmse": 9.0, "budget": "configured"},
                   "classical": {"evals": 128, "wall_s": 60.0, "rmse": 12.5, "budget": "x2 (not reached)"}}}
    text = bench_calibration.render(r)
    assert "direct: x2.00 the wall time and x1.50 the land-model evaluations of MdPL" in text
    assert "classical: x" not in text  # not reached: no ratio claimed
    assert "x2 (not reached)" in text


def test_calibration_bench_tables_mdpl_variants_against_cmaes_of_the_same_run():
    import bench_calibration

    diag = {"sur_gen": 3.0, "lsm_gen": 9.0, "sur_truth": 6.0, "lsm_truth": 5.0, "kept_defaults": 1, "n_sites": 8}
    v = [{"variant": f"refine {k}", "evals": 128 + 24 * k, "ensemble_s": 60.0, "surrogate_s": 100.0,
          "calibrate_s": 40.0 + 100.0 * k, "wall_s": 200.0 + 100.0 * k, "rmse": 8.0 - k,
          "recovery": {"recovered": 20 + k, "pairs": 63}, "gap_rmse": 5.0, "diagnosis": diag} for k in (0, 1)]
    r = {"rows": {"classical": {"rmse": 4.0, "wall_s": 100.0}}, "variants": v, "refine_members": 24,
         "refine_spread": 0.08}
    text = bench_calibration.render_variants(r)
    lines = [ln for ln in text.splitlines() if ln.startswith("| refine")]
    assert len(lines) == 2
    assert "| 300 (60 + 100 + 140) |" in lines[1] and "| 1.75 |" in lines[1] and "| 3 |" in lines[1]  # x CMA-ES
    assert "21/63" in lines[1] and "3.00 / 9.00" in lines[1] and "1/8" in lines[1]
    assert bench_calibration.render_variants({"variants": []}) == ""


def test_book_bench_shows_study_sub_stages_under_the_study_without_counting_them_twice():
    import bench_book

    r = {"total_s": 100.0, "stages": {"study (run or load from cache)": 60.0, "study stage ensemble": 40.0,
                                      "study stage evaluate": 15.0, "book build": 10.0},
         "source": "real", "sites": ["DK-Fou"], "mode": "quick"}
    lines = [ln for ln in bench_book.render(r).splitlines() if ln.startswith("| ") and "stage |" not in ln]
    assert lines[0].startswith("| study (run") and "↳ ensemble" in lines[1] and "↳ evaluate" in lines[2]
    assert lines[3].startswith("| book build")
    assert "| other" in lines[4] and "| 30 |" in lines[4]  # 100 - 60 - 10: sub-stages are inside the 60
