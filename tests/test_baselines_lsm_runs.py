"""Land-model rows on the peers' basis from a study's parameters.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from baselines_toy import toy_site

pytest.importorskip("mdpl.ils.model")

from mdpl.baselines.lsm_runs import study_lsm_rows  # noqa: E402
from mdpl.errors import DataError  # noqa: E402
from mdpl.ils.parameters import PARAMETER_SPACE  # noqa: E402


def test_study_parameters_rerun_on_the_plumber2_basis(tmp_path):
    ds = toy_site("AA-One", lambda sw, t, rh: 0.3 * sw, lambda sw, t, rh: 0.2 * sw, days=4)
    ds.attrs["igbp"] = "GRA"
    d = PARAMETER_SPACE.defaults("GRA")
    high = np.array(PARAMETER_SPACE.upper, float) if hasattr(PARAMETER_SPACE, "upper") else d
    frame = pd.DataFrame([d, 0.5 * (d + high)], columns=PARAMETER_SPACE.names)
    frame.insert(0, "source", ["default", "mdpl"])
    frame.insert(0, "site", "AA-One")
    # the study writes "name [units]" headers
    frame = frame.rename(columns={n: f"{n} [{u}]" for n, u in zip(PARAMETER_SPACE.names, PARAMETER_SPACE.units)})
    frame.to_csv(tmp_path / "parameters.csv", index=False)
    from mdpl.config import LsmConfig
    from mdpl.ils.model import EmbeddedLSM

    lsm = EmbeddedLSM(LsmConfig(spinup_max_years=1), device="cpu")
    rows = pd.DataFrame(study_lsm_rows(tmp_path, {"AA-One": ds}, model=lsm))
    hh = rows[rows.scale == "halfhourly"].set_index(["model", "flux"])
    assert set(hh.index.get_level_values(0)) == {"default", "MdPL"}
    assert hh.loc[("default", "Qle"), "sample"] == "out" and hh.loc[("MdPL", "Qle"), "sample"] == "in"
    assert hh.loc[("default", "Qle"), "n"] == 4 * 48
    assert hh.loc[("default", "Qle"), "rmse"] != pytest.approx(hh.loc[("MdPL", "Qle"), "rmse"])
    (tmp_path / "parameters.csv").write_text("site,source,vcmax25\nAA-One,mdpl,50\n")
    with pytest.raises(DataError, match="lacks parameter column"):
        study_lsm_rows(tmp_path, {"AA-One": ds})


def test_sites_sharing_a_batch_key_run_in_one_batch():
    """Records of equal length share a batch whatever their year; a short record of another length runs apart
    (records under a year spin up over themselves, so padding them would change their spin-up)."""
    from mdpl.baselines.lsm_runs import same_time_axis

    a = toy_site("AA-One", np.zeros(96), np.zeros(96), days=2)
    b = toy_site("BB-Two", np.zeros(96), np.zeros(96), days=2)
    c = toy_site("CC-Six", np.zeros(96), np.zeros(96), days=2, start="2006-01-01")
    d = toy_site("DD-Thr", np.zeros(144), np.zeros(144), days=3)
    assert same_time_axis({"AA-One": a, "BB-Two": b, "CC-Six": c, "DD-Thr": d}) == [["AA-One", "BB-Two", "CC-Six"],
                                                                                    ["DD-Thr"]]


def test_native_series_kept_by_the_study_are_scored_without_a_rerun(tmp_path):
    """The study's evaluation/native_<site>.nc is what gets scored: no land model is run (none is given)."""
    from mdpl.evaluate.native import native_path, write_native
    from mdpl.evaluate.tables import series_rows

    ds = toy_site("AA-One", lambda sw, t, rh: 0.3 * sw, lambda sw, t, rh: 0.2 * sw, days=4)
    ds.attrs["igbp"] = "GRA"
    d = PARAMETER_SPACE.defaults("GRA")
    frame = pd.DataFrame([d, d], columns=PARAMETER_SPACE.names)
    frame.insert(0, "source", ["default", "mdpl"])
    frame.insert(0, "site", "AA-One")
    frame.to_csv(tmp_path / "parameters.csv", index=False)
    rng = np.random.default_rng(0)
    n = ds.sizes["time"]
    kept = {src: {"Qle": rng.uniform(0, 200, n), "Qh": rng.uniform(-50, 200, n)} for src in ("default", "mdpl")}
    write_native(native_path(tmp_path / "evaluation", "AA-One"), ds["time"].values, kept)

    class NoModel:
        def simulate(self, *a, **k):
            raise AssertionError("the land model must not run when the study kept its native series")

    rows = pd.DataFrame(study_lsm_rows(tmp_path, {"AA-One": ds}, model=NoModel()))
    hh = rows[rows.scale == "halfhourly"].set_index(["model", "flux"])
    expect = series_rows(ds, {k: v.astype(np.float32) for k, v in kept["mdpl"].items()}, "MdPL", "in",
                         scales=("halfhourly",))
    assert hh.loc[("MdPL", "Qle"), "rmse"] == pytest.approx([r for r in expect if r["flux"] == "Qle"][0]["rmse"],
                                                             rel=1e-6)
    assert hh.loc[("default", "Qle"), "sample"] == "out"
