"""The 20-site design twin (mdpl.twin_design): the rule, the design's towers, and a 4-site version end to end.

The 4-site run uses the differentiable toy bucket model (tests/calibrate_toy.py) so the whole surrogate route
(ensemble, multi-task surrogate, Sobol screen, generator, land-model check) runs in seconds; the 20-site
design on the embedded land model is ``mdpl calibrate --design`` (configs/twin20.yaml), and its committed
result is in benchmarks/twin20/.
"""

from __future__ import annotations

import numpy as np
import pytest

from calibrate_toy import TorchBucketModel
from mdpl.config import Config
from mdpl.data.features import site_features
from mdpl.errors import ConfigError
from mdpl.ils.parameters import PARAMETER_SPACE
from mdpl.twin_design import (DESIGN_SITES, RULE, climate_indices, design_experiment, design_site_codes, design_sites,
                              recovery_tables, rule_truth)

#: the rule on the toy's parameters: albedo brighter where warm, a bigger bucket where dry
TOY_RULE = {"albedo": (0.3, 0.0), "capacity_mm": (0.0, 0.3)}


def test_the_design_is_twenty_catalogue_towers_five_per_pft_group():
    from mdpl.data.catalogue import pft_group, site_info

    codes = design_site_codes()
    assert len(codes) == 20 and len(set(codes)) == 20
    for group, sites in DESIGN_SITES.items():
        assert len(sites) == 5
        assert all(pft_group(site_info(s)["igbp"]) == group for s in sites), group
    assert design_site_codes(2, ("woodland",)) == list(DESIGN_SITES["woodland"][:2])
    with pytest.raises(ConfigError, match="per_group"):
        design_site_codes(6)
    with pytest.raises(ConfigError, match="unknown PFT group"):
        design_site_codes(1, ("tundra",))


def test_truth_is_the_pft_default_moved_by_the_rule_of_the_climate():
    """Unit-cube deviation = a_T zT + a_D zD exactly (where not clipped); warm sites get lower Vcmax25, dry
    sites deeper roots; the indices come from the attributes the generator sees."""
    sp = PARAMETER_SPACE
    feats = [site_features(d, 0.0) for d in design_sites(1, years=60 / 365.25, time_step_s=10800)]
    truth = rule_truth(sp, feats)
    assert np.all(truth >= sp.lower) and np.all(truth <= sp.upper)
    z = [climate_indices(f) for f in feats]
    for i, f in enumerate(feats):
        u, u0 = sp.to_unit(truth[i]), sp.to_unit(sp.defaults(f.igbp))
        for j, name in enumerate(sp.names):
            if name not in RULE:
                assert u[j] == pytest.approx(u0[j], abs=1e-9), name  # the rest stay at the PFT defaults
                continue
            a_t, a_d = RULE[name]
            want = np.clip(u0[j] + a_t * z[i]["zT"] + a_d * z[i]["zD"], 0.02, 0.98)
            assert u[j] == pytest.approx(want, abs=1e-9), (f.site, name)
    hot, cold = int(np.argmax([q["tair_c"] for q in z])), int(np.argmin([q["tair_c"] for q in z]))
    assert z[hot]["zT"] > 0 > z[cold]["zT"] and -1 < z[cold]["zT"] and z[hot]["zT"] < 1
    d = np.array([q["dryness"] for q in z])
    assert np.all(d > 0) and d.max() / d.min() > 1.5  # the design spans humid and dry climates
    with pytest.raises(ConfigError, match="not_a_parameter"):
        rule_truth(sp, feats, {"not_a_parameter": (0.1, 0.0)})


def test_recovery_scores_the_deviation_so_defaults_cannot_look_right():
    """Returning the PFT defaults scores R^2 <= 0 however much the truth varies between PFTs; the truth scores 1."""
    sp = PARAMETER_SPACE
    igbp = ["ENF", "GRA", "CRO", "SAV"]
    dev = np.array([0.1, -0.15, 0.2, -0.05])
    u = np.stack([sp.to_unit(sp.defaults(g)) for g in igbp])
    j = sp.index("albedo_canopy")
    u[:, j] += dev
    truth = sp.from_unit(u)
    defaults = np.stack([sp.defaults(g) for g in igbp])
    free = np.ones_like(truth, bool)
    _, summ = recovery_tables(sp, list("ABCD"), igbp, truth, {"default": defaults, "perfect": truth},
                              {"default": free, "perfect": free}, {"albedo_canopy": (0.2, 0.0)})
    s = summ.set_index("source")
    assert s.loc["perfect", "r2_deviation"] == pytest.approx(1.0)
    assert s.loc["default", "r2_deviation"] <= 0.0
    assert s.loc["default", "mae"] == pytest.approx(np.abs(dev).mean())


@pytest.fixture(scope="module")
def four_site(tmp_path_factory):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = Config(seed=0, device="cpu")
    cfg.ensemble.n_members = 64
    cfg.surrogate.epochs = 20
    cfg.surrogate.hidden_size = 16
    cfg.surrogate.state_size = 8
    cfg.surrogate.patience = 0
    cfg.calibration.sources = ["default", "mdpl"]
    cfg.calibration.quick_epochs = 150
    cfg.calibration.screen_samples = 32
    datasets = design_sites(2, groups=("evergreen_forest", "grassland"), years=1, time_step_s=10800)
    out = tmp_path_factory.mktemp("design")
    res = design_experiment(cfg, out, datasets=datasets, model=TorchBucketModel(), rule=TOY_RULE, progress=False,
                            transfer=False)  # the toy's own defaults do not survive a saved surrogate's space
    torch.set_num_threads(threads)
    return res


def test_four_site_design_calibration_cuts_the_error_against_the_truth(four_site):
    s = four_site.skill[four_site.skill.flux.isin(["Qle", "Qh"])]
    per_site = s.pivot_table(index="site", columns="source", values="rmse_vs_truth")  # mean of Qle and Qh
    assert len(per_site) == 4
    assert (per_site.mdpl < per_site.default).sum() >= 3, per_site
    assert per_site.mdpl.mean() < 0.9 * per_site.default.mean(), per_site
    for name in ("design_sites.csv", "design_recovery.csv", "design_rule.csv", "design_skill.csv",
                 "design_summary.json", "metrics.json"):
        assert (four_site.out_dir / name).is_file(), name


def test_four_site_design_recovers_the_rule_for_the_sensitive_parameter(four_site):
    """Albedo (every flux sees it) comes back along the rule: its deviation from the default correlates with the
    true one and explains most of it; the defaults explain none of it."""
    r = four_site.rule.set_index(["source", "parameter"])
    alb = r.loc[("mdpl", "albedo")]
    assert alb.sites_moved >= 3
    assert alb.corr_deviation > 0.8 and alb.r2_deviation > 0.5, r
    assert alb.mae < 0.5 * alb.mae_default, r
    assert r.loc[("default", "albedo"), "r2_deviation"] <= 0.0
    sites = four_site.sites
    assert set(sites.pft_group) == {"evergreen_forest", "grassland"} and {"zT", "zD", "true_albedo"} <= set(sites)


def test_cli_refuses_a_bad_design_size_in_one_line(tmp_path, capsys):
    from mdpl.cli import main

    assert main(["calibrate", "--design", "--per-group", "7", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--per-group" in err[0] and "1..5" in err[0]
    assert not (tmp_path / "d").exists()


def test_the_page_reads_the_committed_tables_first_then_a_cached_quick_run(four_site, tmp_path):
    from mdpl.twin_design import design_result, skill_table

    assert design_result(tmp_path / "none", results_dir=tmp_path / "missing", run_quick=False) is None
    got = design_result(tmp_path / "none", results_dir=four_site.out_dir, run_quick=False)
    assert got is not None and got.summary["sites"] == 4 and len(got.recovery) == len(four_site.recovery)
    got = design_result(four_site.out_dir, results_dir=tmp_path / "missing", run_quick=False)  # cached in out_dir
    assert got is not None and list(got.rule.parameter.unique()) == list(TOY_RULE)
    t = skill_table(got.skill, got.sites)
    assert list(t.columns) == ["default", "mdpl"] and set(t.index.get_level_values(0)) == {"evergreen_forest",
                                                                                         "grassland"}
