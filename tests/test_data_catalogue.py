"""The 170-site PLUMBER2 catalogue and the IGBP -> PFT-group map."""

from __future__ import annotations

from pathlib import Path

import pytest

from mdpl import DataError
from mdpl.data import PFT_GROUPS, load_catalogue, pft_group, site_info
from mdpl.data.catalogue import PALS_NAMES

ROOT = Path(__file__).resolve().parent.parent


def test_catalogue_has_170_unique_sites():
    df = load_catalogue()
    assert len(df) == 170 and df["site"].is_unique
    assert df["latitude"].between(-90, 90).all() and df["longitude"].between(-180, 180).all()
    assert ((df["end_year"] - df["start_year"] + 1) == df["years"]).all()
    assert (df["pft_group"] == df["igbp"].map(pft_group)).all()


def test_pft_groups():
    assert {k: pft_group(k) for k in ("ENF", "EBF", "WSA", "SAV", "OSH", "CSH", "CRO", "GRA")} == {
        "ENF": "evergreen_forest", "EBF": "evergreen_forest", "WSA": "woodland", "SAV": "woodland",
        "OSH": "woodland", "CSH": "woodland", "CRO": "cultivation", "GRA": "grassland"}
    for other in ("DBF", "MF", "WET", "DNF"):
        assert pft_group(other) == other
    assert pft_group(" gra ") == "grassland"
    assert set(PFT_GROUPS.values()) == {"evergreen_forest", "woodland", "cultivation", "grassland"}


def test_site_info_known_facts():
    fou = site_info("DK-Fou")
    assert fou["igbp"] == "CRO" and fou["latitude"] == pytest.approx(56.4842) and fou["elevation_m"] == 51.0
    assert (fou["start_year"], fou["end_year"]) == (2005, 2005)
    assert site_info("za-kru")["site"] == "ZA-Kru"  # case-insensitive


def test_unknown_code_suggests():
    with pytest.raises(DataError, match=r"unknown site code 'CN-Cgn'.*did you mean CN-Cng"):
        site_info("CN-Cgn")
    with pytest.raises(DataError, match="unknown site code 'QQQQ'"):
        site_info("QQQQ")


def test_pals_names_map_to_catalogue():
    codes = set(load_catalogue()["site"])
    for stem in ("ElSaler2Fluxnet", "KrugerFluxnet", "PalangFluxnet"):
        assert PALS_NAMES[stem] in codes
    assert PALS_NAMES["ElSaler2Fluxnet"] == "ES-ES2" and PALS_NAMES["KrugerFluxnet"] == "ZA-Kru"


def test_make_catalogue_reproduces_package_file(real_data_dir, tmp_path):
    ref = real_data_dir / "reference" / "plumber2_sites.csv"
    if not ref.is_file():
        pytest.skip("no reference table")
    import runpy

    out = tmp_path / "sites.csv"
    script = runpy.run_path(str(ROOT / "scripts" / "make_catalogue.py"))
    assert script["main"](["--source", str(ref), "--target", str(out)]) == 0
    assert out.read_text() == (ROOT / "mdpl" / "data" / "resources" / "plumber2_sites.csv").read_text()
