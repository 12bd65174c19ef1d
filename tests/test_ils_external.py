"""ExternalModel drives a real external process (``mdpl lsm run``) and matches the in-process run;
failures raise ModelError with the tail of the process's log."""

import sys

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.errors import ModelError
from mdpl.ils import EmbeddedLSM, ExternalModel, LandModel, get_model
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE

LSM_RUN = [sys.executable, "-m", "mdpl", "lsm", "run", "--forcing", "{forcing}", "--params", "{params}",
           "--out", "{out}", "--no-spinup"]


@pytest.fixture(scope="module")
def forcing():
    return site_twin("ZA-Kru", years=2 / 365.25, start="2005-01-10")


def test_external_process_matches_in_process_run(forcing, tmp_path):
    sets = np.stack([SPACE.defaults("SAV"), SPACE.from_unit(np.full(SPACE.n, 0.7))])
    ext = ExternalModel(LSM_RUN, workdir=tmp_path, timeout_s=300)
    assert isinstance(ext, LandModel)
    got = ext.simulate(forcing, sets)
    want = EmbeddedLSM(device="cpu").simulate(forcing, sets, spinup=False)
    assert got.sites == ["ZA-Kru"] and got.n_sets == 2 and list(got.time) == list(want.time)
    for k in ("Qle", "Qh", "Rnet", "Qg", "NEE", "GPP", "TVeg", "ESoil", "ECanop", "Qs", "Qsb", "SoilMoist"):
        torch.testing.assert_close(got[k], want[k].double(), rtol=1e-5, atol=1e-5, msg=k)
    assert (tmp_path / "ZA-Kru_met.nc").is_file() and (tmp_path / "ZA-Kru_set1_params.json").is_file()
    daily = got.daily()
    assert daily.is_daily and daily["Qle"].shape == (2, 2)
    torch.testing.assert_close(daily["Qle"][:, 0], got["Qle"][:, :48].mean(1))


def test_failing_command_raises_with_log_tail(forcing, tmp_path):
    cmd = [sys.executable, "-c", "import sys; print('model says: boom'); sys.exit(3)", "{forcing}", "{params}",
           "{out}"]
    with pytest.raises(ModelError, match=r"(?s)ZA-Kru.*exit code 3.*model says: boom"):
        get_model("external", command=cmd, workdir=tmp_path).simulate(forcing, None)


def test_missing_output_and_bad_templates(forcing, tmp_path):
    quiet = [sys.executable, "-c", "print('did nothing')", "{forcing}", "{params}", "{out}"]
    with pytest.raises(ModelError, match=r"(?s)wrote no output.*did nothing"):
        ExternalModel(quiet, workdir=tmp_path).simulate(forcing, None)
    with pytest.raises(ModelError, match=r"\{out\}"):
        ExternalModel([sys.executable, "{forcing}", "{params}"])
    with pytest.raises(ModelError, match="not found"):
        ExternalModel(["no-such-model-executable-xyz", "{forcing}", "{params}", "{out}"],
                      workdir=tmp_path).simulate(forcing, None)
    slow = [sys.executable, "-c", "import time; time.sleep(30)", "{forcing}", "{params}", "{out}"]
    with pytest.raises(ModelError, match="timed out"):
        ExternalModel(slow, workdir=tmp_path, timeout_s=1).simulate(forcing, None)
