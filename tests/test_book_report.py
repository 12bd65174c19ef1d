"""Helpers behind the book: captions, banner, words for metric changes, reproducibility page, toc."""

from __future__ import annotations

import math

import pytest
import yaml

from mdpl.book import chapters, toc_files
from mdpl.errors import ConfigError
from mdpl.presentation import Captions, data_banner, describe_change, notebook_config
from mdpl.reproducibility import environment_info, reproducibility_markdown


def test_describe_change_says_direction_and_which_is_better():
    text = describe_change({"rmse": 40.0, "r": 0.80}, {"rmse": 30.0, "r": 0.70}, flux="Qle", units="W m-2")
    assert "Qle RMSE fell from 40.0 to 30.0 W m-2 (-25 %)" in text
    assert "better (lower RMSE is better)" in text
    assert "R fell from 0.80 to 0.70: worse (higher R is better)" in text
    text = describe_change({"rmse": 10.0, "r": 0.5}, {"rmse": 12.0, "r": 0.9}, flux="Qh", units="W m-2",
                           before_label="dPL", after_label="MdPL")
    assert "rose from 10.0 to 12.0 W m-2 (20 %) with MdPL compared with dPL: worse" in text
    assert "R rose from 0.50 to 0.90: better" in text
    assert "not available" in describe_change({"rmse": math.nan, "r": 0.1}, {"rmse": 1.0, "r": math.nan},
                                              flux="NEE", units="umol m-2 s-1")


def test_captions_are_numbered_and_tables_need_units():
    cap = Captions(4)
    assert cap.figure_text("A.") == "**Figure 4.1.** A."
    assert cap.figure_text("B.") == "**Figure 4.2.** B."
    assert cap.table_text("KGE.", units="dimensionless") == "**Table 4.1.** KGE. Units: dimensionless."
    with pytest.raises(ValueError, match="units"):
        cap.table_text("RMSE.", units="")
    with pytest.raises(ValueError, match="caption"):
        cap.figure_text("  ")


def test_banner_names_the_data():
    text = data_banner("synthetic", ["DK-Fou", "ZA-Kru"])
    assert "embedded synthetic default" in text and "DK-Fou, ZA-Kru" in text and "MDPL_DATA_DIR" in text
    text = data_banner("real", ["DK-Fou"], "/very/private/path/shared/data")
    assert "shared/data" in text and "/very/private" not in text
    with pytest.raises(ValueError, match="source"):
        data_banner("made-up")


def test_notebook_config_keeps_defaults_for_empty_parameters(tmp_path):
    cfg = notebook_config("", mode="quick", seed=3, device="", data_dir="", sites=[])
    assert cfg.seed == 3 and cfg.device == "auto" and cfg.data.sites == [] and cfg.data.data_dir is None
    y = tmp_path / "c.yaml"
    y.write_text("mode: full\nensemble:\n  n_members: 8\n")
    cfg = notebook_config(str(y), mode="quick", sites=["DK-Fou"], data_dir="/x")
    assert cfg.mode == "quick" and cfg.ensemble.n_members == 8 and cfg.data.sites == ["DK-Fou"]
    assert cfg.data.data_dir == "/x"
    with pytest.raises(ConfigError, match="nope.yaml"):
        notebook_config(str(tmp_path / "nope.yaml"))


def test_reproducibility_page_lists_versions_seed_and_timings():
    env = environment_info()
    assert env["cpu_count"] >= 1 and "torch" in env["packages"]
    page = reproducibility_markdown(env=env, config={"mode": "quick", "seed": 7, "device": "cpu"},
                                    timings={"study": 12.345}, data_source="synthetic", sites=["A"],
                                    git_commit="abc123", command="mdpl book --mode quick")
    assert page.startswith("# Reproducibility")
    assert "| study | 12.3 |" in page and "seed: `7`" in page and "`abc123`" in page
    assert f"| torch | {env['packages']['torch']} |" in page


def test_toc_chapters_have_notebooks(tmp_path):
    files = toc_files()
    assert files[0] == "intro" and "references" in files and "generated/reproducibility" in files
    for name, src in chapters():
        assert src.is_file() and src.stem == name
    (tmp_path / "_toc.yml").write_text("root: intro\nchapters:\n  - file: generated/99_missing\n")
    with pytest.raises(ConfigError, match="99_missing"):
        chapters(tmp_path)


def _site(code, pft, lat, lon, frac_measured, n=96, step=1800):
    import numpy as np
    import pandas as pd

    from mdpl.data.schema import FORCING_VARS, assemble

    t = pd.date_range("2005-01-01", periods=n, freq=f"{step}s").values
    forcing = {k: np.full(n, 1.0) for k in FORCING_VARS}
    forcing["Tair"] = np.full(n, 283.15)
    forcing["Rainf"] = np.full(n, 1e-5)  # kg m-2 s-1 = 0.864 mm/day
    forcing["Snowf"] = np.zeros(n)
    measured = np.arange(n) < int(frac_measured * n)
    qle = np.where(measured, 100.0, 1000.0)  # gap-filled steps must not enter the measured mean
    return assemble(t, forcing, {"site": code, "pft_group": pft, "latitude": lat, "longitude": lon,
                                 "igbp": "CRO", "time_step_s": step, "source": "synthetic"},
                    fluxes={"Qle": qle}, measured={"Qle": measured})


def test_site_tables_from_canonical_datasets():
    from mdpl.data.summary import climate_table, coverage_table, sites_table

    sites = [_site("B", "grassland", 10, 20, 0.5), _site("A", "cultivation", 50, 5, 0.25)]
    tab = sites_table(sites)
    assert list(tab["site"]) == ["A", "B"]  # sorted by PFT group, then site
    assert tab.loc[0, "time_step_min"] == 30 and tab.loc[0, "years"] == pytest.approx(round(2 / 365.25, 2))
    cov = coverage_table({"x": sites[0], "y": sites[1]})
    assert cov.loc[("cultivation", "A"), "Qle"] == pytest.approx(25.0)
    assert cov.loc[("grassland", "B"), "Qh"] == 0.0
    clim = climate_table(sites)
    assert clim.loc[("cultivation", "A"), "Tair (degC)"] == pytest.approx(10.0)
    assert clim.loc[("cultivation", "A"), "precipitation (mm yr-1)"] == pytest.approx(1e-5 * 86400 * 365.25)
    assert clim.loc[("cultivation", "A"), "Qle (measured, W m-2)"] == pytest.approx(100.0)


def test_parameter_sensitivity_recovers_known_dependence():
    import numpy as np

    from mdpl.evaluate.sensitivity import parameter_sensitivity

    rng = np.random.default_rng(0)
    u = rng.random((200, 3))
    qle = 100 * u[:, 0] + 5 * rng.normal(size=200)  # rises with p0 only
    qh = -50 * u[:, 1] ** 3  # falls monotonically with p1: rank correlation exactly -1
    nee = np.full(200, 1.0)  # constant: no sensitivity defined
    qh[0] = np.nan
    sens = parameter_sensitivity(u, {"Qle": qle, "Qh": qh, "NEE": nee}, ["p0", "p1", "p2"])
    assert sens.loc["p0", "Qle"] > 0.95 and abs(sens.loc["p2", "Qle"]) < 0.2
    assert sens.loc["p1", "Qh"] == pytest.approx(-1.0)
    assert sens["NEE"].isna().all()
    with pytest.raises(ValueError, match="members"):
        parameter_sensitivity(u, {"Qle": qle[:10]}, ["p0", "p1", "p2"])


def test_bound_hits_flags_pinned_parameters():
    import pandas as pd

    from mdpl.evaluate.parameters import bound_hits

    u = pd.DataFrame({"p": [0.0, 0.5], "q": [0.995, 0.03]}, index=["A", "B"])
    hits = bound_hits(u)
    assert list(zip(hits["site"], hits["parameter"], hits["bound"])) == [("A", "p", "lower"), ("A", "q", "upper")]
    assert len(bound_hits(u, tol=0.05)) == 3


def test_forcing_monthly_converts_units():
    from mdpl.data.summary import forcing_monthly

    ds = _site("A", "cultivation", 50, 5, 1.0, n=48 * 62)  # two whole months of half-hours
    m = forcing_monthly(ds)
    assert list(m.index.month) == [1, 2, 3][: len(m)]
    assert m["Tair (degC)"].iloc[0] == pytest.approx(10.0)
    assert m["precipitation (mm d-1)"].iloc[0] == pytest.approx(1e-5 * 86400)


def test_ensemble_sensitivity_from_a_store_like_object():
    from types import SimpleNamespace

    import numpy as np

    from mdpl.evaluate.sensitivity import ensemble_sensitivity, top_parameters

    rng = np.random.default_rng(2)
    members, days = 40, 30
    params = rng.random((2, members, 3))
    params[1, -1] = np.nan  # a member that was not run
    qle = np.full((2, members, days + 5), np.nan)
    for i in range(2):
        qle[i, :, :days] = (50 * params[i, :, 2])[:, None] + rng.normal(0, 1, (members, days))
    store = SimpleNamespace(sites=["A", "B"], params=params, daily={"Qle": qle}, n_days=np.array([days, days]),
                            space=SimpleNamespace(names=["p0", "p1", "p2"]))
    sens = ensemble_sensitivity(store)
    assert set(sens) == {"Qle"} and list(sens["Qle"].columns) == ["A", "B"]
    assert (sens["Qle"].loc["p2"] > 0.95).all()
    assert top_parameters(sens["Qle"], 1)[0][0] == "p2"


def _series_ds(n_days=120):
    import numpy as np
    import pandas as pd
    import xarray as xr

    days = pd.date_range("2005-01-01", periods=n_days, freq="D")
    rng = np.random.default_rng(0)
    obs = 50 + 30 * np.sin(np.arange(n_days) / 20) + rng.normal(0, 3, n_days)
    measured = np.ones(n_days, np.int8)
    measured[:5] = 0
    test = (np.arange(n_days) >= 60).astype(np.int8)
    return xr.Dataset({
        "obs_Qle": ("day", obs), "obs_Qle_measured": ("day", measured),
        "sim_default_Qle": ("day", 0.5 * obs + 40), "sim_mdpl_Qle": ("day", obs + 1.0),
        "train": ("day", 1 - test), "test": ("day", test),
    }, coords={"day": days})


def test_period_and_monthly_series_use_measured_days_of_the_period():
    import numpy as np

    from mdpl.calibrate.series import monthly_series, period_series, taylor_points

    ds = _series_ds()
    obs, sims = period_series(ds, "Qle", ["default", "mdpl", "dpl"])
    assert set(sims) == {"default", "mdpl"}  # no dpl simulation in this study
    assert obs.iloc[:60].isna().all() and obs.iloc[60:].notna().all()
    assert sims["mdpl"].iloc[60:].sub(obs.iloc[60:]).eq(1.0).all()
    obs_tr, _ = period_series(ds, "Qle", ["mdpl"], period="train")
    assert obs_tr.iloc[:5].isna().all() and obs_tr.iloc[5:60].notna().all()
    mo, ms = monthly_series(ds, "Qle", ["mdpl"], period="test")
    # test period: 1 Mar .. 30 Apr 2005 -> March (31 days) and April (30 days)
    assert [d.month for d in mo.index] == [3, 4]
    np.testing.assert_allclose(ms["mdpl"].to_numpy() - mo.to_numpy(), 1.0)
    pts = taylor_points(ds, "Qle", ["default", "mdpl"])
    assert pts["mdpl"]["crmsd"] == pytest.approx(0.0, abs=1e-12) and pts["default"]["sd_ratio"] == pytest.approx(0.5)


def _records():
    import pandas as pd

    rows = []
    for site, n_test in (("A", 30), ("B", 12)):
        for flux in ("Qle", "Qh", "NEE"):
            for period, n in (("train", 100), ("test", n_test)):
                for src, rmse in (("default", 30.0), ("mdpl", 20.0), ("dpl", 25.0)):
                    rows.append({"site": site, "flux": flux, "period": period, "scale": "daily", "source": src,
                                 "rmse": rmse + (period == "test"), "r": 0.5, "n": n})
    return pd.DataFrame(rows)


def test_evaluation_period_and_metric_table():
    from mdpl.evaluate.records import evaluation_period, metric_table

    rec = _records()
    assert evaluation_period(rec)[0] == "test"
    assert evaluation_period(rec, min_n=20)[0] == "train"  # site B has only 12 test days
    t = metric_table(rec, metric="rmse", period="test", sources=["default", "dpl", "mdpl", "direct"])
    assert list(t.columns) == ["default", "dpl", "mdpl"]
    assert list(t.index) == [("A", "Qh"), ("A", "Qle"), ("B", "Qh"), ("B", "Qle")]
    assert t.loc[("A", "Qle"), "mdpl"] == 21.0


def test_win_rates_follow_metric_direction():
    import pandas as pd

    from mdpl.evaluate.records import win_rates

    rows = []
    for site in ("A", "B"):
        for src, rmse, r in (("default", 30.0, 0.6), ("mdpl", 20.0 if site == "A" else 40.0, 0.7)):
            rows.append({"site": site, "flux": "Qle", "period": "test", "scale": "daily", "source": src,
                         "rmse": rmse, "r": r, "nse": float("nan"), "kge": 0.1})
    rates, counts = win_rates(pd.DataFrame(rows), period="test", scales=("daily",))
    assert rates.loc["rmse", "daily"] == 50.0  # lower RMSE wins at A only
    assert rates.loc["r", "daily"] == 100.0  # higher R wins at both
    assert rates.loc["kge", "daily"] == 0.0  # ties are not wins
    assert counts.loc["nse", "daily"] == 0


def test_learned_unit_positions_map_through_the_space():
    from types import SimpleNamespace

    import numpy as np

    from mdpl.ils.parameters import PARAMETER_SPACE as space

    lo, hi = np.asarray(space.lower), np.asarray(space.upper)
    params = np.stack([lo, hi])
    cal = SimpleNamespace(param_names=list(space.names), params=params, sites=["A", "B"])
    from mdpl.evaluate.parameters import learned_unit_positions

    u = learned_unit_positions(cal, space)
    assert np.allclose(u.loc["A"], 0.0) and np.allclose(u.loc["B"], 1.0)


def test_benchmark_table_falls_back_to_the_study_rows(tmp_path):
    import json

    from mdpl.baselines.table import benchmark_table

    recs = [{"site": "A", "flux": "Qle", "period": "test", "scale": "daily", "source": src, "rmse": v, "r": 0.5,
             "nse": 0.1, "kge": 0.2, "bias": 1.0, "n": 30} for src, v in (("default", 30.0), ("mdpl", 20.0))]
    (tmp_path / "metrics.json").write_text(json.dumps({"records": recs}))
    table, external = benchmark_table(tmp_path)
    assert not external
    ranks = dict(zip(table["model"], table["rank"]))
    assert ranks["MdPL"] == 1 and len(ranks) == 2
    (tmp_path / "benchmark").mkdir()
    table.assign(model="JULES").to_csv(tmp_path / "benchmark" / "benchmark.csv", index=False)
    assert benchmark_table(tmp_path)[1] is True


def test_select_sites_keeps_study_order_and_names_unknown_sites():
    from mdpl.presentation import select_sites

    assert select_sites(["A", "B", "C"], []) == ["A", "B", "C"]
    assert select_sites(["A", "B", "C"], ["C", "A"]) == ["A", "C"]
    with pytest.raises(ConfigError, match="ZZ not in this study"):
        select_sites(["A"], ["ZZ"])


def test_transfer_table_puts_groups_in_rows_and_sources_in_columns():
    import pandas as pd

    from mdpl.evaluate.records import transfer_table

    base = {"period": "test", "scale": "daily", "flux": "Qle"}
    study = pd.DataFrame([{**base, "site": s, "pft_group": g, "source": src, "kge": v}
                          for s, g in (("A", "crop"), ("B", "crop"), ("C", "forest"))
                          for src, v in (("default", 0.1), ("mdpl", 0.5))])
    loso = pd.DataFrame([{**base, "site": s, "pft_group": "crop", "source": "loso", "kge": 0.3} for s in ("A", "B")])
    t = transfer_table(study, loso, period="test", fluxes=("Qle",))
    assert list(t.index) == [("crop", "A"), ("crop", "B")]  # C was never left out
    assert list(t.columns) == [("Qle", "default"), ("Qle", "mdpl"), ("Qle", "loso")]
    assert t.loc[("crop", "A"), ("Qle", "loso")] == 0.3
    assert transfer_table(study, pd.DataFrame(), period="test").empty


def test_describe_change_adds_digits_when_rounding_would_hide_the_change():
    from mdpl.presentation import describe_change

    text = describe_change({"rmse": 21.71, "r": 0.8612}, {"rmse": 21.74, "r": 0.8634}, flux="Qh", units="W m-2")
    assert "from 21.710 to 21.740" in text and "(0.1 %)" in text
    assert "R rose from 0.8612 to 0.8634" in text


def test_transfer_groups_need_two_sites():
    from types import SimpleNamespace

    from mdpl.transfer import groups_of

    feats = {s: SimpleNamespace(pft_group=g) for s, g in
             (("A", "crop"), ("B", "forest"), ("C", "crop"), ("D", "grass"))}
    assert groups_of(feats) == {"crop": ["A", "C"]}


def test_a_failing_chapter_fails_the_book_and_names_itself(tmp_path):
    from mdpl.book import execute_notebook
    from mdpl.errors import MdplError

    src = tmp_path / "99_broken.py"
    src.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\nraise ValueError(f"broken chapter {x}")\n')
    dest = tmp_path / "gen" / "99_broken.ipynb"
    with pytest.raises(MdplError, match=r"99_broken.py: notebook failed in cell \d+: ValueError: broken chapter 7"):
        execute_notebook(src, dest, {"x": 7})
    assert not dest.exists() and (tmp_path / "gen" / "_99_broken.failed.ipynb").is_file()


def test_run_links_point_at_committed_jupytext_sources(tmp_path):
    """Binder must open a file that exists in the repository: the jupytext source, never book/generated/."""
    from mdpl.book import BOOK_DIR, NOTEBOOKS_DIR, run_links

    for src in sorted(NOTEBOOKS_DIR.glob("0*.py")):
        line = run_links(src.name)
        assert f"urlpath=lab/tree/notebooks/{src.name})" in line and "generated" not in line
        assert f"mdpl batch notebooks/{src.name}" in line
    cfg = yaml.safe_load((BOOK_DIR / "_config.yml").read_text())
    assert "launch_buttons" not in cfg  # the theme's buttons would open the uncommitted executed copies
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/x/y\n")
    assert "Binder" not in run_links("01_data_sites.py", tmp_path)  # Binder only for GitHub


def test_fold_code_hides_every_code_cell_but_keeps_other_choices():
    import nbformat

    from mdpl.book import fold_code

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell("p = 2", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("secret()", metadata={"tags": ["remove-cell"]})]
    fold_code(nb)
    fold_code(nb)  # idempotent
    assert "tags" not in nb.cells[0].metadata
    assert nb.cells[1].metadata["tags"] == ["hide-input"]
    assert nb.cells[2].metadata["tags"] == ["parameters", "hide-input"]
    assert nb.cells[3].metadata["tags"] == ["remove-cell"]


def test_the_repository_url_is_written_in_one_place():
    """book/_config.yml holds it; the Binder links and the repository button read it from there."""
    import subprocess

    from mdpl.book import BOOK_DIR, REPO_ROOT, repository, run_links

    cfg = yaml.safe_load((BOOK_DIR / "_config.yml").read_text())
    url = cfg["repository"]["url"].rstrip("/")
    assert cfg["html"]["use_repository_button"] is True
    name, branch = repository()
    assert url == f"https://github.com/{name}" and f"mybinder.org/v2/gh/{name}/{branch}" in run_links("01_data_sites.py")
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    holders = []
    for f in files:
        path = REPO_ROOT / f
        if path.is_file() and not path.is_symlink() and path.suffix not in (".nc", ".png", ".pt"):
            text = path.read_text(errors="ignore")
            if name in text:
                holders.append(f)
    assert holders == ["book/_config.yml"], f"the repository name {name} is also written in {holders}"
