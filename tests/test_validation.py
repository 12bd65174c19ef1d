"""Hostile and careless input: one line and exit 2, checked before any work, no side effects (issue 12).

Each test names the item of issue 12 it covers. The study runs use the toy
land model (tests/calibrate_toy.py); nothing here needs the real data.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from data_helpers import rewrite, synthetic_with_fluxes

import mdpl.study
from calibrate_toy import TorchBucketModel
from mdpl.cli import main
from mdpl.config import config_from_dict
from mdpl.data.writer import write_alma
from mdpl.errors import ConfigError, DataError


def _one_line_error(capsys, *argv, contains=()):
    capsys.readouterr()
    rc = main(list(argv))
    err = capsys.readouterr().err.strip()
    assert rc == 2, (argv, err)
    assert len(err.splitlines()) == 1 and err.startswith("mdpl: error:"), err
    for c in contains:
        assert c in err, (c, err)
    return err


@pytest.fixture()
def site_dir(tmp_path):
    """A directory holding one synthetic site (Met + Flux), 0.3 years."""
    d = tmp_path / "data"
    write_alma(synthetic_with_fluxes("DK-Fou", years=0.3, seed=0), d)
    return d


@pytest.fixture()
def no_model(monkeypatch):
    """The study's land model, patched to count runs (so a test can assert nothing ran)."""
    calls = []

    def make(cfg, device):
        calls.append(1)
        return TorchBucketModel()

    monkeypatch.setattr(mdpl.study, "make_model", make)
    return calls


# -- item 3: a mistyped $MDPL_DATA_DIR ---------------------------------------------------------------
def test_a_mistyped_mdpl_data_dir_is_an_error_not_a_switch_to_synthetic_data(monkeypatch, tmp_path, capsys, no_model):
    from mdpl.data import study_sites

    monkeypatch.setenv("MDPL_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataError, match=r"typo: data directory \(\$MDPL_DATA_DIR\) not found"):
        study_sites(config_from_dict({}))
    _one_line_error(capsys, "calibrate", "--out", str(tmp_path / "out"), "--sources", "default", contains=["MDPL_DATA_DIR"])
    assert not no_model and not (tmp_path / "out").exists()


# -- item 4: data inspect FILE reads that file -------------------------------------------------------
def test_inspect_reads_the_file_named_not_a_stale_copy_below_it(tmp_path, capsys):
    d = tmp_path / "d"
    sf = write_alma(synthetic_with_fluxes("DK-Fou", years=0.3, seed=0), d)
    write_alma(synthetic_with_fluxes("DK-Fou", years=0.2, seed=5), d / "0-stale")  # sorts before the real files
    capsys.readouterr()
    assert main(["data", "inspect", str(sf.met), "--json"]) == 0
    (s,) = json.loads(capsys.readouterr().out)["sites"]
    assert s["files"] == [str(sf.met), str(sf.flux)]
    from mdpl.data import read_site

    assert s["n_steps"] == read_site(sf.met, sf.flux).sizes["time"]  # the 0.3-year file, not the 0.2-year copy
    assert main(["data", "inspect", str(sf.flux), "--json"]) == 0  # the Flux file names the same pair
    assert json.loads(capsys.readouterr().out)["sites"][0]["files"] == [str(sf.met), str(sf.flux)]


def test_two_copies_of_a_site_in_one_data_directory_are_an_error_naming_both(tmp_path, capsys):
    from mdpl.data.discover import find_sites

    d = tmp_path / "d"
    a = write_alma(synthetic_with_fluxes("DK-Fou", years=0.3, seed=0), d)
    b = write_alma(synthetic_with_fluxes("DK-Fou", years=0.2, seed=5), d / "copy")
    with pytest.raises(DataError, match="2 met files") as e:
        find_sites(d)
    assert str(a.met) in str(e.value) and str(b.met) in str(e.value)
    _one_line_error(capsys, "data", "inspect", str(d), contains=["cannot tell which"])


# -- item 5: site names never escape the output directory -------------------------------------------
NOTEBOOK = '# %% tags=["parameters"]\nsite = "x"\n# %%\nprint(site)\n'


@pytest.mark.parametrize("site", ["ABS", "../escape", ".hidden", "a/b"])
def test_batch_site_names_never_leave_the_output_directory(tmp_path, capsys, site):
    nb = tmp_path / "nb.py"
    nb.write_text(NOTEBOOK)
    if site == "ABS":
        site = str(tmp_path / "elsewhere" / "abs_name")
        (tmp_path / "elsewhere").mkdir()
    _one_line_error(capsys, "batch", str(nb), "--sites", site, "--out", str(tmp_path / "out"), "--workers", "1",
                    contains=["not a plain name"])
    assert not list(tmp_path.rglob("*abs_name*")) and not (tmp_path / "escape.json").exists()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.ipynb"))


def test_store_paths_refuse_a_site_code_that_is_a_path(tmp_path):
    from mdpl.ensemble.store import batch_file, features_file

    with pytest.raises(ConfigError, match="not a plain name"):
        batch_file(tmp_path, "../x", 0)
    with pytest.raises(ConfigError, match="not a plain name"):
        features_file(tmp_path, "/abs/x")


# -- item 6: values that pass the types but make no sense -------------------------------------------
@pytest.mark.parametrize("raw, key", [
    ({"surrogate": {"epochs": -1}}, "surrogate.epochs"),
    ({"surrogate": {"epochs": 0}}, "surrogate.epochs"),
    ({"calibration": {"task_weights": {"Qle": -1.0, "Qh": 1.0}}}, "task_weights.Qle"),
    ({"calibration": {"task_weights": {"Qle": 0.0, "Qh": 0.0}}}, "at least one weight"),
    ({"calibration": {"task_weights": {"LE": 1.0}}}, "unknown flux 'LE'"),
    ({"calibration": {"learning_rate": float("nan")}}, "calibration.learning_rate: must be a finite number"),
    ({"surrogate": {"learning_rate": float("inf")}}, "surrogate.learning_rate: must be a finite number"),
    ({"surrogate": {"learning_rate": 0.0}}, "surrogate.learning_rate: must be > 0"),
    ({"lsm": {"dtype": "float16"}}, "lsm.dtype"),
    ({"seed": 10**20}, "seed: must be between"),
    ({"seed": -1}, "seed: must be between"),
    ({"ensemble": {"n_members": 10**9}}, "ensemble.n_members: must be between"),
    ({"ensemble": {"n_members": 0}}, "ensemble.n_members"),
    ({"ensemble": {"batch_size": 0}}, "ensemble.batch_size"),
    ({"ensemble": {"span": "half"}}, "ensemble.span"),
    ({"surrogate": {"tasks": []}}, "surrogate.tasks"),
    ({"surrogate": {"tasks": ["Qle", "GPP"]}}, "surrogate.tasks"),
    ({"surrogate": {"val_fraction": 0.6, "test_fraction": 0.5}}, "val_fraction + test_fraction"),
    ({"data": {"synthetic_years": 0.0}}, "data.synthetic_years"),
    ({"lsm": {"spinup_tolerance": -1e-3}}, "lsm.spinup_tolerance"),
    ({"calibration": {"patience": 0}}, "calibration.patience"),
])
def test_values_that_pass_the_types_but_make_no_sense_are_one_config_error(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.").replace("+", r"\+").replace("(", r"\(")):
        config_from_dict(raw)


def test_every_shipped_default_still_validates():
    """The built-in defaults and every configuration the repository ships pass the range checks (a check that
    refused one would fail here, naming the file), and a file's values are the ones it states."""
    import yaml

    from mdpl.config import Config, load_config

    assert config_from_dict({}) == Config()
    config_from_dict({"calibration": {"patience": None, "task_weights": {"Qle": 1.0, "Qh": 0.0, "NEE": 0.5}}})
    repo = Path(__file__).resolve().parent.parent
    shipped = sorted((repo / "configs").glob("*.yaml")) + [repo / "tests" / "book_tiny.yaml"]
    assert len(shipped) >= 3
    for path in shipped:
        cfg = load_config(path)
        raw = yaml.safe_load(path.read_text()) or {}
        for section, values in raw.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    assert getattr(getattr(cfg, section), key) == value, (path.name, section, key)
            else:
                assert getattr(cfg, section) == values, (path.name, section)


# -- item 7: one line and exit 2 instead of a traceback ---------------------------------------------
def test_out_that_is_an_existing_file_is_one_line(tmp_path, capsys, site_dir, no_model):
    f = tmp_path / "afile"
    f.write_text("x")
    nb = tmp_path / "nb.py"
    nb.write_text(NOTEBOOK)
    _one_line_error(capsys, "calibrate", "--out", str(f), "--data-dir", str(site_dir), "--sources", "default",
                    contains=["not a directory"])
    _one_line_error(capsys, "batch", str(nb), "--sites", "DK-Fou", "--out", str(f), contains=["not a directory"])
    _one_line_error(capsys, "benchmark", "--out", str(f), "--data-dir", str(site_dir), contains=["not a directory"])
    _one_line_error(capsys, "lsm", "run", "--forcing", str(next(site_dir.glob("*_Met.nc"))), "--out",
                    str(f / "sim.nc"), contains=["not a directory"])
    assert not no_model and f.read_text() == "x"


def test_a_read_only_output_directory_is_one_line_before_any_work(tmp_path, capsys, site_dir, no_model):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _one_line_error(capsys, "calibrate", "--out", str(ro / "x"), "--data-dir", str(site_dir), "--sources", "default",
                        contains=["not writable"])
        _one_line_error(capsys, "calibrate", "--out", str(ro), "--data-dir", str(site_dir), "--sources", "default",
                        contains=["not writable"])
    finally:
        ro.chmod(0o755)
    assert not no_model and not list(ro.iterdir())


@pytest.mark.parametrize("value", ['"x"', "null", "[1]", "true"])
def test_params_json_values_must_be_numbers(tmp_path, capsys, site_dir, value):
    p = tmp_path / "p.json"
    p.write_text('{"albedo_canopy": %s}' % value)
    _one_line_error(capsys, "lsm", "run", "--forcing", str(next(site_dir.glob("*_Met.nc"))), "--params", str(p),
                    "--out", str(tmp_path / "o.nc"), contains=["albedo_canopy", "must be a number"])
    assert not (tmp_path / "o.nc").exists()


def test_a_binary_or_broken_config_file_is_one_line(tmp_path, capsys):
    b = tmp_path / "bin.yaml"
    b.write_bytes(b"\x00\x01\x02\xff\xfe")
    _one_line_error(capsys, "calibrate", "--out", str(tmp_path / "o"), "--config", str(b), contains=["not a text file"])
    y = tmp_path / "bad.yaml"
    y.write_text("a: [1,\n b: 2")  # item 10: invalid YAML printed 8 lines
    _one_line_error(capsys, "calibrate", "--out", str(tmp_path / "o"), "--config", str(y),
                    contains=["not valid YAML", "line 2"])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, contains", [
    (["data", "synthesize", "DK-Fou", "--dest", "{tmp}/syn", "--years", "0"], "--years"),
    (["calibrate", "--twin", "--twin-years", "0", "--out", "{tmp}/t"], "--twin-years"),
    (["calibrate", "--twin", "--twin-step", "7", "--out", "{tmp}/t"], "--twin-step"),
    (["bench", "lsm", "--batch-sizes", "0", "--no-write", "--device", "cpu", "--threads", "1", "--compile", "off"],
     "--batch-sizes"),
    (["bench", "lsm", "--steps", "-5", "--batch-sizes", "1", "--no-write", "--device", "cpu", "--threads", "1",
      "--compile", "off"], "--steps"),  # item 10: negative throughput with exit 0
])
def test_option_values_out_of_range_are_one_line(tmp_path, capsys, argv, contains):
    _one_line_error(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in argv], contains=[contains])
    assert not (tmp_path / "syn").exists() and not (tmp_path / "t").exists()


# -- item 8: late checks ------------------------------------------------------------------------------
def test_lsm_run_checks_its_output_path_before_running_the_model(tmp_path, capsys, site_dir, monkeypatch):
    from mdpl.ils.model import EmbeddedLSM

    ran = []
    monkeypatch.setattr(EmbeddedLSM, "simulate", lambda self, *a, **k: ran.append(1) or (_ for _ in ()).throw(
        AssertionError("the model ran before the output path was checked")))
    out = tmp_path / "outdir"
    out.mkdir()
    _one_line_error(capsys, "lsm", "run", "--forcing", str(next(site_dir.glob("*_Met.nc"))), "--out", str(out),
                    contains=["is a directory"])
    assert not ran and not list(tmp_path.glob("*.tmp")) and not list(out.iterdir())


def test_a_met_file_without_its_flux_partner_is_named_before_any_work(tmp_path, capsys, site_dir, no_model):
    next(site_dir.glob("*_Flux.nc")).unlink()
    _one_line_error(capsys, "calibrate", "--out", str(tmp_path / "o"), "--data-dir", str(site_dir), "--sources",
                    "default", "mdpl", contains=["no Flux file for site DK-Fou"])
    assert not no_model and not (tmp_path / "o").exists()


# -- item 9: side effects of mistakes -----------------------------------------------------------------
@pytest.mark.parametrize("where", ["same", "inside"])
def test_an_output_directory_in_the_data_directory_is_refused(tmp_path, capsys, site_dir, no_model, where):
    before = sorted(p.name for p in site_dir.iterdir())
    out = site_dir if where == "same" else site_dir / "results"
    _one_line_error(capsys, "calibrate", "--out", str(out), "--data-dir", str(site_dir), "--sources", "default",
                    contains=["inside the data directory"])
    assert sorted(p.name for p in site_dir.iterdir()) == before and not no_model


def test_book_with_a_missing_study_dir_does_not_create_it(tmp_path, capsys):
    missing = tmp_path / "MISSING"
    _one_line_error(capsys, "book", "--study-dir", str(missing), "--no-build", "--book-dir", str(_tiny_book(tmp_path)),
                    contains=["MISSING"])
    assert not missing.exists() and not (tmp_path / "book" / "generated").exists()


def test_book_only_bad_writes_nothing(tmp_path, capsys):
    book = _tiny_book(tmp_path)
    _one_line_error(capsys, "book", "--only", "BAD", "--no-build", "--book-dir", str(book), "--out",
                    str(tmp_path / "study"), contains=["--only", "BAD"])
    assert not (book / "generated").exists() and not (tmp_path / "study").exists()


def _tiny_book(tmp_path) -> Path:
    from mdpl.book import BOOK_DIR

    book = tmp_path / "book"
    book.mkdir(exist_ok=True)
    (book / "_toc.yml").write_text((BOOK_DIR / "_toc.yml").read_text())
    return book


# -- item 10: small things ------------------------------------------------------------------------------
def test_result_files_are_mode_0644_including_the_ensemble_store(tmp_path):
    from mdpl.ensemble.runner import run_ensemble

    def modes(files):
        return {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in files}

    old = os.umask(0o022)
    try:
        m = TorchBucketModel()
        ds = synthetic_with_fluxes("DK-Fou", years=0.1, seed=0)
        run_ensemble([ds], m, m.parameter_space, 4, tmp_path / "e", batch_size=2, progress=False)
        files = [p for p in (tmp_path / "e").rglob("*") if p.is_file()]
        assert len(files) == 4 and modes(files) == {k: "0o644" for k in modes(files)}  # were 0o600
        from mdpl.io import atomic_write_text  # the one writer every other output goes through

        assert modes([atomic_write_text(tmp_path / "x.json", "{}")]) == {"x.json": "0o644"}
    finally:
        os.umask(old)


def test_a_reversed_time_axis_says_it_runs_backwards(tmp_path):
    from mdpl.data import read_site

    sf = write_alma(synthetic_with_fluxes("DK-Fou", years=0.05, seed=0), tmp_path / "d")
    rewrite(sf.met, lambda raw: raw.assign_coords(time=raw["time"].copy(data=raw["time"].values[::-1].copy())))
    with pytest.raises(DataError, match="time axis runs backwards") as e:
        read_site(sf.met, sf.flux)
    assert "median step" not in str(e.value) and sf.met.name in str(e.value)


def test_the_cli_turns_an_os_error_into_one_line(tmp_path, capsys, monkeypatch):
    import mdpl.data.commands as dc

    def boom(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(dc, "_inspect", boom)
    _one_line_error(capsys, "data", "inspect", str(tmp_path), contains=["Permission denied", "x"])
