"""study_sites: real sites when files are at hand, the synthetic default otherwise."""

from __future__ import annotations

import pytest

from mdpl import DataError
from mdpl.config import config_from_dict
from mdpl.data import study_sites


def test_synthetic_default_on_a_fresh_machine(monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("MDPL_DATA_DIR", str(empty))
    cfg = config_from_dict({"seed": 3, "data": {"synthetic_years": 1, "synthetic_sites": ["DK-Fou", "ZA-Kru"]}})
    sites, kind = study_sites(cfg)
    assert kind == "synthetic"
    assert [d.attrs["site"] for d in sites] == ["DK-Fou", "ZA-Kru"]
    assert all(d.attrs["source"] == "synthetic" and d.attrs["seed"] == 3 for d in sites)
    assert sites[0].sizes["time"] == 17520


def test_explicit_missing_dir_is_an_error(tmp_path):
    cfg = config_from_dict({"data": {"data_dir": str(tmp_path / "nowhere")}})
    with pytest.raises(DataError, match="nowhere.*not found"):
        study_sites(cfg)


def test_real_when_present(real_data_dir):
    cfg = config_from_dict({"data": {"data_dir": str(real_data_dir), "sites": ["ZA-Kru", "DK-Fou"]}})
    sites, kind = study_sites(cfg)
    assert kind == "real" and [d.attrs["site"] for d in sites] == ["ZA-Kru", "DK-Fou"]
    assert sites[0].attrs["source"] == "pals"
