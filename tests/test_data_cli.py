"""``mdpl data inspect``: JSON facts per site, one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from data_helpers import synthetic_with_fluxes

from mdpl.cli import main
from mdpl.data import find_sites
from mdpl.data.writer import write_alma


@pytest.fixture
def synth_dir(tmp_path):
    write_alma(synthetic_with_fluxes("ZA-Kru", years=0.05), tmp_path / "d", dialect="pals")
    write_alma(synthetic_with_fluxes("DK-Fou", years=0.05), tmp_path / "d", dialect="plumber2")
    return tmp_path / "d"


def test_inspect_json_synthetic(synth_dir, capsys):
    assert main(["data", "inspect", str(synth_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sites = {s["site"]: s for s in out["sites"]}
    assert set(sites) == {"DK-Fou", "ZA-Kru"}
    kru = sites["ZA-Kru"]
    assert kru["source"] == "pals" and kru["time_step_s"] == 1800 and kru["time_stamp_in_file"] == "end"
    assert kru["measured_pct"]["Qle"] == pytest.approx(100 * 2 / 3, abs=0.1)
    assert "CO2air" in kru["filled"] and "LAI" in kru["filled"]
    assert "Qle_cor" in kru["absent"]
    assert sites["DK-Fou"]["period"][0] == "2005-01-01T00:00:00"


def test_inspect_text_single_file(synth_dir, capsys):
    met = next(synth_dir.glob("*_Met.nc"))
    assert main(["data", "inspect", str(met)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DK-Fou") and "measured   Qle 66.7%" in out


def test_inspect_real(real_data_dir, capsys):
    assert main(["data", "inspect", str(real_data_dir), "--json"]) == 0
    sites = {s["site"]: s for s in json.loads(capsys.readouterr().out)["sites"]}
    assert sorted(sites) == sorted(find_sites(real_data_dir)) and sites  # every tower found, whichever are present
    assert all(s["time_step_s"] == 1800 for s in sites.values())
    assert all(s["measured_pct"]["Qle"] > 0 for s in sites.values())
    found = find_sites(real_data_dir)
    for code, s in sites.items():  # PALS files stamp the step end (00:30 first), PLUMBER2 the start
        assert s["time_stamp_in_file"] == ("end" if found[code].dialect == "pals" else "start"), code


@pytest.mark.parametrize("make", ["missing", "not_netcdf", "empty_dir"])
def test_bad_input_exit_2_one_line(tmp_path, capsys, make):
    target = tmp_path / "x_Met.nc"
    if make == "not_netcdf":
        target.write_text("hello")
    elif make == "empty_dir":
        target = tmp_path / "empty"
        target.mkdir()
    rc = main(["data", "inspect", str(target)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("mdpl: error:") and str(target) in err


def test_bad_input_subprocess(tmp_path):
    bad = tmp_path / "broken_Met.nc"
    bad.write_bytes(b"CDF\x01" + b"\x00" * 20)  # netCDF magic, truncated body
    env = dict(os.environ, TQDM_DISABLE="1")
    r = subprocess.run([sys.executable, "-m", "mdpl", "data", "inspect", str(bad)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "broken_Met.nc" in r.stderr


def test_synthesize_then_inspect(tmp_path, capsys):
    assert main(["data", "synthesize", "CN-Cng", "--dest", str(tmp_path), "--years", "0.05", "--time-step", "3600"]) == 0
    capsys.readouterr()
    assert main(["data", "inspect", str(tmp_path), "--json"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["sites"]
    assert s["site"] == "CN-Cng" and s["time_step_s"] == 3600 and s["fluxes"] == []
    assert s["utc_offset_h"] == 8.0  # recovered from the synthetic SWdown cycle
    assert main(["data", "synthesize", "XX-Nop", "--dest", str(tmp_path)]) == 2


def test_mismatched_pair_is_an_error(tmp_path):
    from mdpl import DataError
    from mdpl.data import read_site

    a = write_alma(synthetic_with_fluxes("DK-Fou", years=0.02), tmp_path / "a")
    b = write_alma(synthetic_with_fluxes("ZA-Kru", years=0.02), tmp_path / "b")
    with pytest.raises(DataError, match="another site"):
        read_site(a.met, b.flux)
