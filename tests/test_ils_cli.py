"""``mdpl lsm`` and ``mdpl bench``: files in, files out, one-line errors with exit code 2."""

import json

import numpy as np
import pytest
import xarray as xr

from mdpl.cli import main
from mdpl.data.synthetic import site_twin
from mdpl.ils.forcing import write_forcing_netcdf
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE


@pytest.fixture(scope="module")
def met(tmp_path_factory):
    p = tmp_path_factory.mktemp("lsm") / "met.nc"
    write_forcing_netcdf(site_twin("CN-Cng", years=1 / 365.25, start="2005-07-01"), p)
    return p


def test_lsm_run_writes_alma_output(met, tmp_path, capsys):
    par = tmp_path / "p.json"
    par.write_text(json.dumps({"vcmax25": 70.0, "q10": 2.5}))
    out = tmp_path / "out.nc"
    assert main(["lsm", "run", "--forcing", str(met), "--params", str(par), "--out", str(out), "--no-spinup"]) == 0
    ds = xr.open_dataset(out)
    assert ds.sizes["time"] == 48 and ds["Qle"].attrs["units"] == "W m-2"
    assert {"Qle", "Qh", "NEE", "GPP", "SoilMoist", "TVeg", "Qs", "Qsb"} <= set(ds.data_vars)
    used = json.loads(ds.attrs["parameters"])
    assert used["vcmax25"] == 70.0 and used["bb_slope"] == SPACE.defaults("GRA")[SPACE.index("bb_slope")]
    assert np.isfinite(ds["Qle"].values).all()
    daily = tmp_path / "daily.nc"
    assert main(["lsm", "run", "--forcing", str(met), "--out", str(daily), "--no-spinup", "--daily"]) == 0
    assert xr.open_dataset(daily).sizes["time"] == 1


def test_lsm_user_errors_are_one_line(met, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vcmax_typo": 70.0}))
    assert main(["lsm", "run", "--forcing", str(met), "--params", str(bad), "--out", str(tmp_path / "o.nc")]) == 2
    err = capsys.readouterr().err
    assert "vcmax_typo" in err and "bad.json" in err and "Traceback" not in err
    assert main(["lsm", "run", "--forcing", str(tmp_path / "nope.nc"), "--out", str(tmp_path / "o.nc")]) == 2
    assert "nope.nc" in capsys.readouterr().err
    out_of_bounds = tmp_path / "oob.json"
    out_of_bounds.write_text(json.dumps({"albedo_canopy": 0.9}))
    assert main(["lsm", "run", "--forcing", str(met), "--params", str(out_of_bounds), "--out",
                 str(tmp_path / "o.nc")]) == 2
    assert "albedo_canopy" in capsys.readouterr().err


def test_lsm_defaults_and_parameters(capsys):
    assert main(["lsm", "defaults", "EBF"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert list(d) == SPACE.names and d["root_depth_m"] == SPACE.defaults("EBF")[SPACE.index("root_depth_m")]
    assert main(["lsm", "defaults", "NOPE"]) == 2
    assert main(["lsm", "parameters"]) == 0
    assert "vcmax25" in capsys.readouterr().out


def test_bench_lsm_small_run(capsys):
    assert main(["bench", "lsm", "--batch-sizes", "1", "8", "--steps", "6", "--loop-columns", "2",
                 "--device", "cpu", "--threads", "1", "--compile", "off", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "column_steps_per_s" in out and "loop of 1" in out and "hardware:" in out
    rows = [ln for ln in out.splitlines() if ln.startswith("| cpu | 1 |")]
    assert len(rows) == 3 and all("True" in r for r in rows)


def test_bench_registry_is_one_line_per_bench():
    from mdpl.bench import BENCHES, resolve
    from mdpl.errors import ConfigError

    assert {"lsm", "surrogate", "book"} <= set(BENCHES)
    assert callable(resolve("lsm"))
    with pytest.raises(ConfigError, match="nope"):
        resolve("nope")
