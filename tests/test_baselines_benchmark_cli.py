"""`mdpl benchmark` on a tiny synthetic case: table, ranking figure, study and user peer rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from baselines_toy import toy_site
from mdpl.cli import main
from mdpl.evaluate.tables import TABLE_COLUMNS


def _sites():
    def make(name, seed, a, b):
        return toy_site(name, lambda sw, t, rh: a * sw + 5, lambda sw, t, rh: b * sw + 0.5 * (t - 288), days=120, seed=seed)

    return {"AA-One": make("AA-One", 1, 0.40, 0.20), "BB-Two": make("BB-Two", 2, 0.35, 0.15), "CC-Six": make("CC-Six", 3, 0.25, 0.25)}


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    sites = _sites()
    monkeypatch.setattr("mdpl.baselines.commands._load_datasets", lambda codes, data_dir: sites)
    peers = tmp_path / "peers"
    peers.mkdir()
    (peers / "CLM5_metrics.csv").write_text(
        "site,period,variable,n,bias,rmse,r,nme,std_obs,std_mod,pct_measured\n"
        "AA-One,2005-2005,Qle,5000,1.0,1000.0,0.1,1,50,40,90\n"
        "AA-One,2005-2005,Qh,5000,1.0,0.001,0.99,1,50,40,90\n"
    )
    study = tmp_path / "study"
    study.mkdir()
    recs = []
    for site in sites:
        for flux in ("Qle", "Qh"):
            for src, err in (("default", 40.0), ("mdpl", 10.0), ("dpl", 20.0)):
                recs.append({"site": site, "flux": flux, "period": "test", "scale": "daily", "source": src,
                             "rmse": err, "r": 0.9, "nse": 0.5, "kge": 0.5, "bias": 1.0, "n": 30})
    recs.append({"site": "AA-One", "flux": "Qle", "period": "train", "scale": "daily", "source": "mdpl",
                 "rmse": 5.0, "r": 0.9, "nse": 0.5, "kge": 0.5, "bias": 1.0, "n": 60})
    (study / "metrics.json").write_text(json.dumps({"records": recs}))
    return sites, peers, study, tmp_path / "out"


def test_benchmark_cli_writes_table_and_figure(tiny, capsys):
    sites, peers, study, out = tiny
    rc = main(["benchmark", "--sites", *sites, "--out", str(out), "--study", str(study),
               "--peers-dir", str(peers), "--no-lstm"])
    assert rc == 0, capsys.readouterr().err
    df = pd.read_csv(out / "benchmark.csv")
    assert list(df.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert {"1lin", "3km27", "default", "MdPL", "dPL", "CLM5"} <= set(df["model"])
    assert (out / "ranking.png").stat().st_size > 1000
    # the user's CSV joined on the peers' basis, out of sample, with its stated period
    clm = df[df.model == "CLM5"]
    assert set(clm["comparison"]) == {"plumber2_basis"} and set(clm["period"]) == {"2005-2005"}
    # ranks: within AA-One Qh half-hourly, CLM5's tiny RMSE ranks first; for Qle last
    g = df[(df.site == "AA-One") & (df.scale == "halfhourly") & (df.comparison == "plumber2_basis")]
    assert g[(g.model == "CLM5") & (g.flux == "Qh")]["rank"].item() == 1
    assert g[(g.model == "CLM5") & (g.flux == "Qle")]["rank"].item() == g[g.flux == "Qle"]["n_models"].max()
    # held-out daily: MdPL (10) beats dPL (20) beats default (40); in/out of sample stated
    h = df[(df.comparison == "held_out") & (df.scale == "daily") & (df.site == "BB-Two") & (df.flux == "Qle")]
    r = h.set_index("model")["rank"]
    assert r["MdPL"] < r["dPL"] < r["default"]
    assert set(h["sample"]) == {"out"}
    assert df[(df.comparison == "training")]["sample"].tolist() == ["in"]
    # 1lin and 3km27 were trained on the other sites: the exact linear truth is not recoverable
    lin = df[(df.model == "1lin") & (df.scale == "halfhourly") & (df.flux == "Qle")]
    assert (lin["rmse"] > 0.1).all() and lin["basis"].str.contains("BB-Two, CC-Six").any()
    assert "MdPL ranks 1" in (out / "summary.md").read_text()


def test_benchmark_cli_bad_study_dir_is_one_line(tiny, capsys):
    sites, peers, study, out = tiny
    rc = main(["benchmark", "--out", str(out), "--study", str(out / "nope"), "--peers-dir", str(peers), "--no-lstm"])
    assert rc == 2
    assert "no metrics.json" in capsys.readouterr().err
