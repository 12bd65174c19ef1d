"""The study cache answers only the question it was asked (issue 12, items 1, 2 and 7's damaged files).

Sites are toy-model twins written as real ALMA files into a data directory,
so the study reads them the way it reads towers; the land model is the
differentiable bucket (tests/calibrate_toy.py). A rerun after a change must
give exactly what a fresh run on the changed inputs gives, recomputing only
the stages that read the change.
"""

from __future__ import annotations

import json
import shutil

import netCDF4
import numpy as np
import pytest
import yaml

import mdpl.study
from calibrate_toy import TorchBucketModel
from mdpl.twin import hidden_truth, make_observations
from mdpl.cli import main
from mdpl.data.synthetic import generate_site
from mdpl.data.writer import write_alma

TINY = {
    "ensemble": {"n_members": 8, "batch_size": 8},
    "surrogate": {"epochs": 2, "window_days": 0, "hidden_size": 8, "state_size": 0, "n_experts": 1, "task_experts": 0,
                  "tasks": ["Qle", "Qh"]},
    "calibration": {"quick_epochs": 6, "direct_quick_epochs": 2, "direct_quick_days": 20},
}


def _toy_site(code, igbp, seed, years=0.25, step=3600):
    m = TorchBucketModel()
    ds = generate_site(code, igbp=igbp, latitude=45, years=years, time_step_s=step, seed=seed)
    obs, *_ = make_observations(m, [ds], hidden_truth(m.parameter_space, 1, seed=seed), seed=seed)
    return obs[0]


@pytest.fixture()
def study(monkeypatch, tmp_path):
    """(data dir, run(out, *extra) -> exit code, config path) with the toy model patched in."""
    monkeypatch.setattr(mdpl.study, "make_model", lambda cfg, device: TorchBucketModel())
    data = tmp_path / "data"
    write_alma(_toy_site("DK-Fou", "CRO", 1), data)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))

    def run(out, *extra, config=cfg, data_dir=data):
        dd = ["--data-dir", str(data_dir)] if data_dir else []
        return main(["calibrate", "--out", str(out), "--config", str(config), *dd, "--device", "cpu", *extra])

    return data, run, cfg


def _mtimes(out, *rel):
    return {r: (out / r).stat().st_mtime_ns for r in rel}


def _scale(path, var, factor):
    nc = netCDF4.Dataset(path, "a")
    nc[var][:] = nc[var][:] * factor
    nc.close()


def test_a_changed_flux_file_recomputes_the_calibration_and_metrics_not_the_ensemble(study, tmp_path):
    """Item 1: halve Qle in the Flux file in place; the rerun equals a fresh run on the changed file."""
    data, run, _ = study
    out = tmp_path / "out"
    assert run(out, "--sources", "default", "mdpl") == 0
    old = (out / "metrics.json").read_text()
    kept = _mtimes(out, "ensemble/runs/DK-Fou__b0000.nc", "surrogates/multitask/surrogate.pt")
    cal = _mtimes(out, "calibration/mdpl/result.json")
    _scale(next(data.glob("*_Flux.nc")), "Qle", 0.5)
    assert run(out, "--sources", "default", "mdpl") == 0
    new = (out / "metrics.json").read_text()
    assert new != old  # before the fix: byte-identical, the old answer
    assert _mtimes(out, *kept) == kept  # the land-model runs and the surrogate never read Qle
    assert _mtimes(out, *cal) != cal
    fresh = tmp_path / "fresh"
    assert run(fresh, "--sources", "default", "mdpl") == 0
    assert json.loads(new) == json.loads((fresh / "metrics.json").read_text())


def test_a_changed_met_file_reruns_only_that_sites_land_model_runs(study, tmp_path):
    """Item 1: forcing changed at one site: its ensemble batches are redone, the other site's are kept."""
    data, run, _ = study
    write_alma(_toy_site("CN-Cng", "GRA", 2), data)
    out = tmp_path / "out"
    assert run(out, "--sources", "default", "mdpl") == 0
    other = _mtimes(out, "ensemble/runs/CN-Cng__b0000.nc", "ensemble/features/CN-Cng.nc")
    mine = _mtimes(out, "ensemble/runs/DK-Fou__b0000.nc")
    _scale(next(data.glob("DK-Fou*_Met.nc")), "SWdown", 0.8)
    assert run(out, "--sources", "default", "mdpl") == 0
    assert _mtimes(out, *other) == other and _mtimes(out, *mine) != mine
    fresh = tmp_path / "fresh"
    assert run(fresh, "--sources", "default", "mdpl") == 0
    assert json.loads((out / "metrics.json").read_text()) == json.loads((fresh / "metrics.json").read_text())


def test_switching_mdpl_data_dir_to_an_hourly_copy_recomputes(study, tmp_path, monkeypatch):
    """Item 1: $MDPL_DATA_DIR moved from the hourly to a half-hourly copy of the site."""
    data, run, _ = study
    other = tmp_path / "half-hourly"
    write_alma(_toy_site("DK-Fou", "CRO", 1, step=1800), other)
    out = tmp_path / "out"
    monkeypatch.setenv("MDPL_DATA_DIR", str(data))
    assert run(out, "--sources", "default", "mdpl", data_dir=None) == 0
    old = json.loads((out / "metrics.json").read_text())
    monkeypatch.setenv("MDPL_DATA_DIR", str(other))
    assert run(out, "--sources", "default", "mdpl", data_dir=None) == 0
    new = json.loads((out / "metrics.json").read_text())
    assert new != old
    fresh = tmp_path / "fresh"
    assert run(fresh, "--sources", "default", "mdpl", data_dir=None) == 0
    assert new == json.loads((fresh / "metrics.json").read_text())


def test_a_config_change_recomputes_exactly_the_stages_that_read_it(study, tmp_path):
    """Generator epochs touch the calibrations only; surrogate epochs the surrogates and MdPL, not direct."""
    data, run, cfg = study
    out = tmp_path / "out"
    srcs = ("--sources", "default", "mdpl", "direct")
    assert run(out, *srcs) == 0
    ens = _mtimes(out, "ensemble/runs/DK-Fou__b0000.nc", "surrogates/multitask/surrogate.pt")
    direct = _mtimes(out, "calibration/direct/result.json")
    mdpl_ = _mtimes(out, "calibration/mdpl/result.json")
    c2 = tmp_path / "surrogate-epochs.yaml"
    c2.write_text(yaml.safe_dump({**TINY, "surrogate": {**TINY["surrogate"], "epochs": 3}}))
    assert run(out, *srcs, config=c2) == 0
    # direct may read the surrogate (its Sobol screen decides the calibrated parameters): not asserted here
    assert _mtimes(out, *mdpl_) != mdpl_
    assert _mtimes(out, "ensemble/runs/DK-Fou__b0000.nc")["ensemble/runs/DK-Fou__b0000.nc"] == \
        ens["ensemble/runs/DK-Fou__b0000.nc"]
    assert _mtimes(out, "surrogates/multitask/surrogate.pt") != {"surrogates/multitask/surrogate.pt":
                                                                 ens["surrogates/multitask/surrogate.pt"]}


def test_damaged_cache_files_are_detected_and_recomputed(study, tmp_path, capsys):
    """Item 7: a truncated ensemble batch and an empty stage.json: no traceback, recomputed, same answer."""
    data, run, _ = study
    out = tmp_path / "out"
    assert run(out, "--sources", "default", "mdpl") == 0
    metrics = json.loads((out / "metrics.json").read_text())
    batch = out / "ensemble/runs/DK-Fou__b0000.nc"
    raw = batch.read_bytes()
    batch.write_bytes(raw[: len(raw) // 3])
    (out / "calibration/mdpl/stage.json").write_text("")
    (out / "evaluation/stage.json").write_text("{")
    capsys.readouterr()
    assert run(out, "--sources", "default", "mdpl") == 0
    assert "damaged ensemble file" in capsys.readouterr().out
    assert batch.stat().st_size == len(raw)
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_store_names_a_damaged_batch(tmp_path):
    """EnsembleStore.open on a truncated batch: a DataError naming the file, not an HDF5 traceback."""
    from mdpl.ensemble.runner import run_ensemble
    from mdpl.ensemble.store import EnsembleStore
    from mdpl.errors import DataError

    m = TorchBucketModel()
    run_ensemble([_toy_site("DK-Fou", "CRO", 1, years=0.1)], m, m.parameter_space, 4, tmp_path / "e", batch_size=2,
                 progress=False)
    b = tmp_path / "e/runs/DK-Fou__b0001.nc"
    b.write_bytes(b.read_bytes()[:200])
    with pytest.raises(DataError, match="DK-Fou__b0001.nc: damaged ensemble file"):
        EnsembleStore.open(tmp_path / "e")
    from mdpl.ensemble.store import remove_damaged

    assert remove_damaged(tmp_path / "e") == ["runs/DK-Fou__b0001.nc"] and not b.exists()


def test_a_record_too_short_for_a_held_out_period_is_an_error_before_any_work(study, tmp_path, capsys):
    """Item 2: 60 days leave no held-out block: one line, exit 2, nothing run (was: +nan %, exit 0)."""
    data, run, _ = study
    short = tmp_path / "short"
    write_alma(_toy_site("DK-Fou", "CRO", 1, years=60 / 365), short)
    out = tmp_path / "out"
    capsys.readouterr()
    assert run(out, "--sources", "default", "mdpl", data_dir=short) == 2
    err = capsys.readouterr().err
    assert "DK-Fou" in err and "held-out" in err and len(err.strip().splitlines()) == 1
    assert not (out / "ensemble").exists()


def test_missing_held_out_scores_are_loud_warnings_in_study_json():
    """Item 2: a verdict with a NaN score is named in the warnings, never silently averaged to +nan %."""
    from mdpl.config import config_from_dict
    from mdpl.calibrate.verdicts import verdict_warnings

    cfg = config_from_dict({})
    rec = dict(period="test", scale="daily", flux="Qle", site="A")
    records = [{**rec, "source": "default", "rmse": 1.0, "n": 10}, {**rec, "source": "mdpl", "rmse": float("nan"), "n": 0},
               {**rec, "flux": "Qh", "source": "default", "rmse": 1.0, "n": 10},
               {**rec, "flux": "Qh", "source": "mdpl", "rmse": 2.0, "n": 10}]
    w = verdict_warnings(records, ["default", "mdpl"], cfg)
    assert w == ["site A, Qle, mdpl: no held-out daily score (0 scored days); the verdict for this site is missing"]
    assert verdict_warnings(records[:1] + records[2:], ["default"], cfg) == []


def test_stage_fingerprints_follow_data_content_and_code(tmp_path):
    """The data part of every fingerprint is the content (and files), and the code of the stage counts."""
    from mdpl.config import config_from_dict
    from mdpl.cache import code_fingerprint, dataset_fingerprint, stage_fingerprints

    ds = _toy_site("DK-Fou", "CRO", 1, years=0.1)
    cfg = config_from_dict({"calibration": {"sources": ["default", "mdpl", "direct"]}})
    m = TorchBucketModel()
    a = stage_fingerprints(cfg, m, [ds], "given", cfg.calibration.sources)
    ds2 = ds.copy(deep=True)
    ds2["Qle"].values[5] += 1.0
    b = stage_fingerprints(cfg, m, [ds2], "given", cfg.calibration.sources)
    assert a["ensemble"] == b["ensemble"] and a["surrogate"] == b["surrogate"]
    assert a["calibration"]["mdpl"] != b["calibration"]["mdpl"] and a["evaluation"] != b["evaluation"]
    assert dataset_fingerprint(ds, "forcing") == dataset_fingerprint(ds2, "forcing")
    assert dataset_fingerprint(ds, "obs") != dataset_fingerprint(ds2, "obs")
    m.version = "2"
    c = stage_fingerprints(cfg, m, [ds], "given", cfg.calibration.sources)
    assert c["ensemble"] != a["ensemble"]
    assert code_fingerprint("ils") != code_fingerprint("ensemble")
