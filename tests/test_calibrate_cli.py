"""`mdpl calibrate` end to end on a tiny synthetic problem: files, schema, reuse, determinism, errors.

The land model is the differentiable toy (tests/calibrate_toy.py) and the
sites are two short synthetic twins with toy observations, patched into
:mod:`mdpl.study`; everything else (ensemble, surrogates, generator training,
land-model scoring, files) is the real code path.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

import mdpl.study
from calibrate_toy import TorchBucketModel
from mdpl.twin import hidden_truth, make_observations
from mdpl.cli import main
from mdpl.data.synthetic import generate_site

TINY = {
    "ensemble": {"n_members": 12, "batch_size": 12},
    "surrogate": {"epochs": 2, "window_days": 0, "hidden_size": 8, "state_size": 0, "n_experts": 1, "task_experts": 0,
                  "tasks": ["Qle", "Qh"]},
    "calibration": {"quick_epochs": 8, "direct_quick_epochs": 3, "direct_quick_days": 30},
}


@pytest.fixture(scope="module")
def toy_sites():
    m = TorchBucketModel()
    dss = [generate_site("SYN-A", igbp="GRA", latitude=45, years=0.25, time_step_s=3600, seed=1),
           generate_site("SYN-B", igbp="CRO", latitude=35, longitude=0, years=0.25, time_step_s=3600, seed=2)]
    obs, *_ = make_observations(m, dss, hidden_truth(m.parameter_space, 2, seed=0), seed=0)
    return obs


@pytest.fixture()
def patched(monkeypatch, toy_sites, tmp_path):
    monkeypatch.setattr(mdpl.study, "make_model", lambda cfg, device: TorchBucketModel())
    monkeypatch.setattr(mdpl.study, "load_study_sites", lambda cfg: (toy_sites, "synthetic"))
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _run(out, cfg_path, *extra):
    return main(["calibrate", "--mode", "quick", "--out", str(out), "--config", str(cfg_path), "--device", "cpu",
                 "--sources", "default", "mdpl", "dpl", "direct", *extra])


def test_calibrate_writes_metrics_parameters_checkpoints_and_config(patched, tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, patched, "--seed", "3") == 0
    recs = json.loads((out / "metrics.json").read_text())["records"]
    df = pd.DataFrame(recs)
    for key in ("site", "flux", "period", "scale", "source", "rmse", "r", "nse", "kge", "bias", "n"):
        assert key in df.columns
    combos = df.groupby(["site", "flux", "period", "scale", "source"]).size()
    # Qle, Qh, NEE (NEE scored though never calibrated) and Qle_cor, Qh_cor (the energy-balance-closed basis)
    assert set(df.flux) == {"Qle", "Qh", "NEE", "Qle_cor", "Qh_cor"}
    assert len(combos) == 2 * 5 * 2 * 2 * 4 and (combos == 1).all()
    assert set(df.source) == {"default", "mdpl", "dpl", "direct"} and set(df.period) == {"train", "test"}
    assert (df[df.scale == "daily"].n >= 5).all() and np.isfinite(df[df.scale == "daily"].rmse).all()
    params = pd.read_csv(out / "parameters.csv")
    assert list(params.columns[:2]) == ["site", "source"]
    assert "capacity_mm [kg m-2]" in params.columns and "albedo [1]" in params.columns
    assert len(params) == 2 * 4
    assert yaml.safe_load((out / "config.yaml").read_text())["seed"] == 3
    # every route went through the land-model check on training days, the PFT defaults a candidate
    for src in ("mdpl", "dpl", "direct"):
        info = json.loads((out / "calibration" / src / "result.json").read_text())["info"]
        assert [r["site"] for r in info["selection"]] == ["SYN-A", "SYN-B"]
        assert all(r["chosen"] == "default" or np.isfinite(r["loss_" + r["chosen"]]) for r in info["selection"])
        kept = params[(params.source == src)].drop(columns=["source"]).set_index("site")
        for r in info["selection"]:
            if r["chosen"] == "default":  # the defaults were kept: the parameters are the defaults
                d = params[(params.source == "default") & (params.site == r["site"])].drop(columns=["source", "site"])
                np.testing.assert_allclose(kept.loc[r["site"]].to_numpy(float), d.to_numpy(float)[0])
    for ckpt in ("surrogates/multitask/surrogate.pt", "surrogates/singletask/surrogate.pt",
                 "calibration/mdpl/generator.pt", "calibration/direct/generator.pt"):
        assert (out / ckpt).is_file(), ckpt
    # the study loads back without recomputing; its summaries agree with the records
    from mdpl.study import load_study

    st = load_study(out)
    assert st.sites == ["SYN-A", "SYN-B"] and set(st.calibrations) == {"mdpl", "dpl", "direct"}
    summ = st.summary(source="mdpl")
    rec = df[(df.site == "SYN-A") & (df.flux == "Qle") & (df.period == "test") & (df.scale == "daily")].set_index("source")
    row = summ[(summ.site == "SYN-A") & (summ.flux == "Qle")].iloc[0]
    assert row.rmse_mdpl == pytest.approx(rec.loc["mdpl", "rmse"]) and row.rmse_default == pytest.approx(rec.loc["default", "rmse"])
    h = st.headline(source="mdpl")
    assert h["Qle_and_Qh"]["sites"] == 2 and 0 <= h["Qle_and_Qh"]["improved"] <= 2
    assert {r["source"] for r in st.surrogate_gap} == {"mdpl", "dpl"}
    assert not st.fidelity_table().empty
    assert "obs_Qle" in st.series("SYN-A") and "sim_mdpl_Qh" in st.series("SYN-A")
    # a rerun reuses every finished stage and gives the same files
    before = {p: (out / p).stat().st_mtime_ns for p in ("calibration/mdpl/result.json", "surrogates/multitask/surrogate.pt")}
    metrics = (out / "metrics.json").read_text()
    assert _run(out, patched, "--seed", "3") == 0
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before
    assert (out / "metrics.json").read_text() == metrics


def test_same_seed_same_parameters_and_metrics(patched, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["calibrate", "--mode", "quick", "--out", str(out), "--config", str(patched), "--device", "cpu",
                     "--sources", "default", "mdpl", "--seed", "5"]) == 0
    assert (a / "parameters.csv").read_text() == (b / "parameters.csv").read_text()
    assert (a / "metrics.json").read_text() == (b / "metrics.json").read_text()


def test_load_study_without_a_study_is_a_clear_error(tmp_path):
    from mdpl.errors import ConfigError
    from mdpl.study import load_study

    with pytest.raises(ConfigError, match="no finished study"):
        load_study(tmp_path)


def test_unknown_site_bad_mode_and_bad_source_are_one_line_errors(tmp_path, capsys):
    assert main(["calibrate", "--mode", "quick", "--out", str(tmp_path / "x"), "--sites", "XX-Nope"]) == 2
    assert "XX-Nope" in capsys.readouterr().err
    assert main(["calibrate", "--mode", "fast", "--out", str(tmp_path / "x")]) == 2
    assert "fast" in capsys.readouterr().err
    assert main(["calibrate", "--out", str(tmp_path / "x"), "--sources", "mdpl", "magic"]) == 2
    assert "magic" in capsys.readouterr().err


@pytest.mark.full
def test_quick_mode_on_the_five_real_sites(real_data_dir, tmp_path):
    """The paper's headline on the real sites: MdPL beats PFT defaults for Qle and Qh at >= 4 of 5 sites."""
    from mdpl.study import load_study

    out = tmp_path / "real"
    assert main(["calibrate", "--mode", "quick", "--out", str(out), "--sources", "default", "mdpl", "dpl",
                 "--data-dir", str(real_data_dir), "--device", "cpu"]) == 0
    h = load_study(out).headline()
    assert h["Qle_and_Qh"]["sites"] == 5
    assert h["Qle_and_Qh"]["improved"] >= 4, h


def test_twin_command_writes_the_twin_tables(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(mdpl.study, "make_model", lambda cfg, device: TorchBucketModel())
    cfg = tmp_path / "twin.yaml"
    cfg.write_text(yaml.safe_dump({"calibration": {"direct_quick_epochs": 3, "direct_quick_days": 0}}))
    out = tmp_path / "twin"
    assert main(["calibrate", "--twin", "--sites", "DK-Fou", "--twin-years", "0.1", "--twin-step", "3600", "--out", str(out),
                 "--config", str(cfg), "--sources", "default", "direct", "--device", "cpu"]) == 0
    skill = pd.read_csv(out / "twin_skill.csv")
    assert set(skill.source) == {"default", "direct"} and set(skill.flux) == {"Qle", "Qh", "NEE"}
    assert "identifiable parameters" in capsys.readouterr().out


def test_refinement_rounds_run_the_land_model_around_the_calibration_and_resume(patched, tmp_path, toy_sites):
    """calibration.refine_rounds: the refinement ensemble holds the calibrated set of the first calibration,
    the refined surrogate is saved, and a rerun reuses everything (no new land-model runs)."""
    cfg = yaml.safe_load(patched.read_text())
    cfg["calibration"].update(refine_rounds=1, refine_members=4)
    path = tmp_path / "refine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["calibrate", "--mode", "quick", "--out", str(out), "--config", str(path), "--device", "cpu",
                 "--sources", "default", "mdpl"]) == 0
    from mdpl.calibrate.result import CalibrationResult
    from mdpl.ensemble import EnsembleStore

    extra = EnsembleStore.open(out / "refine" / "mdpl" / "round1")
    assert extra.n_members == 4 and extra.manifest["sampler"] == "given"
    res = CalibrationResult.load(out / "calibration" / "mdpl")
    assert res.info["refine_rounds"] == 1
    assert (out / "refine" / "mdpl" / "surrogate").is_dir()
    assert {r["source"] for r in json.loads((out / "evaluation" / "surrogate_gap.json").read_text())["records"]} == {"mdpl"}
    before = (out / "refine" / "mdpl" / "round1" / "manifest.json").stat().st_mtime_ns
    assert main(["calibrate", "--mode", "quick", "--out", str(out), "--config", str(path), "--device", "cpu",
                 "--sources", "default", "mdpl"]) == 0
    assert (out / "refine" / "mdpl" / "round1" / "manifest.json").stat().st_mtime_ns == before


def test_seeds_retrain_surrogates_and_generators_on_one_ensemble_and_report_the_spread(patched, tmp_path):
    cfg = yaml.safe_load(patched.read_text())
    cfg.setdefault("calibration", {})["seeds"] = 2
    path = tmp_path / "seeds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "seeds"
    assert main(["calibrate", "--mode", "quick", "--out", str(out), "--config", str(path), "--device", "cpu",
                 "--sources", "default", "mdpl"]) == 0
    from mdpl.study import load_study

    st = load_study(out)
    recs, params = st.seed_results()
    assert sorted(recs.seed.unique()) == [0, 1] and set(recs.source) == {"default", "mdpl"}
    assert sorted(params.seed.unique()) == [0, 1] and len(params) == 2 * 2
    assert (out / "surrogates" / "multitask_seed1" / "surrogate.pt").is_file()
    # seed 0 is the headline: its records are the study's own
    mine = recs[(recs.seed == 0) & (recs.source == "mdpl")].sort_values(["site", "flux", "period", "scale"])
    head = st.records[st.records.source == "mdpl"].sort_values(["site", "flux", "period", "scale"])
    np.testing.assert_allclose(mine.rmse.to_numpy(), head.rmse.to_numpy())
    # another seed gives other parameters (the spread is real), all inside the bounds
    p0 = params[params.seed == 0].drop(columns=["site", "source", "seed"]).to_numpy()
    p1 = params[params.seed == 1].drop(columns=["site", "source", "seed"]).to_numpy()
    assert not np.allclose(p0, p1)
    cred = st.credibility_by_seed()
    assert list(cred.seed) == [0, 1] and set(cred.source) == {"mdpl"}
