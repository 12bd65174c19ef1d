"""Peer LSM tables: the shipped JULES/ecLand files and a user's own CSV."""

from __future__ import annotations

import math

import pytest

from mdpl.baselines.peers import load_peer_metrics, peer_model_name, peer_rows
from mdpl.errors import DataError

FIVE = ["DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag"]

USER_CSV = """site,period,variable,n,bias,rmse,r,nme,std_obs,std_mod,pct_measured
DK-Fou,2005-2005,Qle,9031,5.0,30.0,0.8,0.5,40.0,38.0,51.5
DK-Fou,2005-2005,Qh,9952,-2.0,20.0,0.9,0.4,50.0,45.0,56.8
DK-Fou,2005-2005,NEE,0,,,,,,,
XX-Far,2001-2002,Qle,100,1.0,10.0,0.5,0.5,20.0,18.0,80.0
"""


def test_model_name_from_file_name():
    assert peer_model_name("x/JULES_GL9_metrics.csv") == "JULES_GL9"
    assert peer_model_name("ecLand_cy50r1_series.json") == "ecLand_cy50r1"
    assert peer_model_name("CLM5.csv") == "CLM5"


def test_user_csv_joins_the_table(tmp_path):
    (tmp_path / "CLM5_metrics.csv").write_text(USER_CSV)
    rows = peer_rows(tmp_path, sites=FIVE)
    assert set(rows["model"]) == {"CLM5"}
    assert set(rows["site"]) == {"DK-Fou"}  # XX-Far not asked for; NEE not a flux here
    qle = rows[(rows.flux == "Qle")].iloc[0]
    assert qle["scale"] == "halfhourly" and qle["sample"] == "out" and qle["period"] == "2005-2005"
    assert qle["rmse"] == 30.0 and qle["n"] == 9031
    assert qle["nse"] == pytest.approx(1 - 30.0**2 / 40.0**2)
    assert math.isnan(qle["kge"])  # the CSV has no observed mean


def test_malformed_user_csv_names_the_file(tmp_path):
    (tmp_path / "Noah_metrics.csv").write_text("site,variable,rmse\nDK-Fou,Qle,3\n")
    with pytest.raises(DataError, match=r"Noah_metrics.csv.*lacks column\(s\) period"):
        load_peer_metrics(tmp_path)
    with pytest.raises(DataError, match="peers directory not found"):
        load_peer_metrics(tmp_path / "nowhere")


def test_shipped_peers_for_the_five_sites(real_data_dir):
    peers = real_data_dir / "reference" / "peers"
    if not peers.is_dir():
        pytest.skip("no reference/peers in the data directory")
    rows = peer_rows(peers, sites=FIVE)
    assert {"JULES_GL9", "ecLand_cy50r1"} <= set(rows["model"])
    hh = rows[rows.scale == "halfhourly"]
    assert len(hh[hh.model == "JULES_GL9"]) == 10  # 5 sites x (Qle, Qh)
    dk = hh[(hh.model == "JULES_GL9") & (hh.site == "DK-Fou") & (hh.flux == "Qle")].iloc[0]
    assert dk["rmse"] == pytest.approx(82.1395) and dk["period"] == "2005-2005"
    # the CSV's numbers are self-consistent: MSE = bias^2 + sd_o^2 + sd_m^2 - 2 r sd_o sd_m
    m = load_peer_metrics(peers)
    r = m[(m.model == "JULES_GL9") & (m.site == "DK-Fou") & (m.variable == "Qle")].iloc[0]
    mse = r.bias**2 + r.std_obs**2 + r.std_mod**2 - 2 * r.r * r.std_obs * r.std_mod
    assert math.sqrt(mse) == pytest.approx(r.rmse, rel=1e-3)
    mon = rows[(rows.scale == "monthly") & (rows.site == "ZA-Kru")]
    assert len(mon) >= 2
    # restricting to months we share moves the period
    only02 = peer_rows(peers, sites=["ZA-Kru"], months={"ZA-Kru": {f"2002-{m:02d}" for m in range(1, 13)}})
    p = only02[(only02.scale == "monthly")]["period"]
    assert all(s.startswith("2002-") for s in p)


def test_our_plumber2_basis_matches_the_peers_exactly(real_data_dir):
    """For a PLUMBER2-release site our measured-step counts and monthly obs are the peers' own."""
    peers = real_data_dir / "reference" / "peers"
    if not peers.is_dir():
        pytest.skip("no reference/peers in the data directory")
    from mdpl.baselines.peers import load_peer_series
    from mdpl.baselines.table import obs_agreement
    from mdpl.data import load_sites
    from mdpl.evaluate.tables import halfhourly_pairs

    (ds,) = load_sites(real_data_dir, ["DK-Fou"])
    m = load_peer_metrics(peers)
    for flux in ("Qle", "Qh"):
        _, _, mask = halfhourly_pairs(ds, flux, ds[flux].values)
        n_peer = m[(m.model == "JULES_GL9") & (m.site == "DK-Fou") & (m.variable == flux)]["n"].item()
        assert mask.sum() == n_peer
    agree = obs_agreement({"DK-Fou": ds}, load_peer_series(peers))
    assert agree[("DK-Fou", "Qle")] < 1e-3 and agree[("DK-Fou", "Qh")] < 1e-3
