import pytest

from mdpl.config import Config, config_from_dict, load_config, save_config
from mdpl.errors import ConfigError


def test_defaults_are_valid():
    cfg = config_from_dict({})
    assert isinstance(cfg, Config) and cfg.mode == "quick"


def test_yaml_round_trip(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("mode: full\nseed: 3\ndata:\n  min_measured_fraction: 0.5\n  sites: [DK-Fou]\n")
    cfg = load_config(p)
    assert cfg.mode == "full" and cfg.seed == 3
    assert cfg.data.min_measured_fraction == 0.5 and cfg.data.sites == ["DK-Fou"]
    out = save_config(cfg, tmp_path / "resolved.yml")
    assert load_config(out) == cfg


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"data: unknown key\(s\) min_measured"):
        config_from_dict({"data": {"min_measured": 0.5}})


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"seed": "one"}, "seed: expected an integer"),
        ({"seed": True}, "seed: expected an integer"),
        ({"mode": "fast"}, "mode: expected 'quick' or 'full'"),
        ({"data": {"min_measured_fraction": 1.5}}, r"must lie in \[0, 1\]"),
        ({"data": {"sites": "DK-Fou"}}, "data.sites: expected a list"),
        ({"data": []}, "data: expected a mapping"),
    ],
)
def test_bad_values_are_errors(raw, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(raw)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("mode: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_overrides_apply_on_top_of_file(tmp_path):
    p = tmp_path / "c.yml"
    p.write_text("seed: 3\n")
    assert load_config(p, seed=7, device=None).seed == 7


def test_every_shipped_config_file_loads():
    from pathlib import Path

    from mdpl.config import load_config

    files = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
    assert files
    for f in files:
        cfg = load_config(f)
        assert cfg.mode in ("quick", "full"), f
    assert load_config(files[0].with_name("quick-refined.yaml")).calibration.refine_rounds == 1
