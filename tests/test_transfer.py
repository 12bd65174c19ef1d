"""Leave-one-site-out transfer (chapter 6): the PFT-set and the generator's own-inputs transfer, on a known problem."""

from __future__ import annotations

import numpy as np
from test_calibrate_surrogate_route import TRUTH, AnalyticSurrogate, _cfg, toy_site

from mdpl.calibrate.inputs import default_priors, stack_inputs
from mdpl.calibrate.surrogate_route import calibrate_with_surrogate
from mdpl.data.features import split_periods
from mdpl.transfer import groups_of, own_inputs_transfer, pft_transfer


def test_both_transfers_recover_the_group_parameters_at_a_site_they_never_saw():
    """Three grassland sites share true parameters; both transfers, trained on two, give them at the third.

    The own-inputs generator sees the third site's own (different, random) attributes, so it extrapolates:
    the well-determined light-use slope a and sensible fraction c come out, the weakly determined LAI
    half-saturation b (log scale) need not."""
    truth = TRUTH["A"]
    a, b, left = (toy_site(n, "GRA", "grassland", truth, seed=k) for k, n in enumerate("PQR"))
    cfg = _cfg(epochs=200)
    train = [split_periods(f.days)[0] for f in (a, b)]
    pft = pft_transfer(AnalyticSurrogate(), [a, b], cfg, train)
    own = own_inputs_transfer(AnalyticSurrogate(), [a, b], left, cfg, train)
    np.testing.assert_allclose(pft, truth, rtol=0.1)
    np.testing.assert_allclose(own[[0, 2]], np.asarray(truth)[[0, 2]], rtol=0.1)
    assert groups_of({f.site: f for f in (a, b, left)}) == {"grassland": ["P", "Q", "R"]}


def test_own_inputs_transfer_is_the_trained_generator_applied_to_the_site():
    """Applied to one of its own training sites, the rebuilt generator gives exactly the calibrated set there;
    at another site it moves with that site's inputs (it is not one set for the group)."""
    a, b = toy_site("P", "GRA", "grassland", TRUTH["A"], seed=1), toy_site("Q", "GRA", "grassland", TRUTH["B"], seed=2)
    cfg = _cfg(epochs=60)
    train = [split_periods(f.days)[0] for f in (a, b)]
    res = calibrate_with_surrogate(AnalyticSurrogate(), [a, b], cfg, train_masks=train, mode="all")
    at_a = own_inputs_transfer(AnalyticSurrogate(), [a, b], a, cfg, train)
    at_b = own_inputs_transfer(AnalyticSurrogate(), [a, b], b, cfg, train)
    np.testing.assert_allclose(at_a, res.params[0], rtol=1e-5)
    np.testing.assert_allclose(at_b, res.params[1], rtol=1e-5)
    assert not np.allclose(at_a, at_b)
    assert stack_inputs([a, b], train).shape[0] == 2 and default_priors(AnalyticSurrogate.space, [a]).shape == (1, 3)


def test_a_cached_transfer_is_reused_only_while_its_inputs_are_unchanged(tmp_path):
    """The leave-one-site-out stage stamp must change with the generator settings and with the sites' data, and
    stay the same when nothing it reads changed (the cache is reused only then)."""
    from mdpl.config import Config
    from mdpl.data.synthetic import generate_site
    from mdpl.transfer import _fingerprint

    (tmp_path / "surrogates" / "multitask").mkdir(parents=True)
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "surrogates" / "multitask" / "model.json").write_text("{}")
    ds = [generate_site("SYN-A", igbp="GRA", latitude=45, years=0.1, time_step_s=3600, seed=1)]
    cfg = Config(seed=0)
    fp = _fingerprint(tmp_path, cfg, ds)
    assert _fingerprint(tmp_path, Config(seed=0), ds) == fp
    cfg.calibration.epochs = cfg.calibration.epochs + 1
    assert _fingerprint(tmp_path, cfg, ds) != fp
    other = ds[0].copy(deep=True)
    other["Tair"].values[0] += 1.0
    assert _fingerprint(tmp_path, Config(seed=0), [other]) != fp
    (tmp_path / "surrogates" / "multitask" / "model.json").write_text('{"changed": 1}')
    assert _fingerprint(tmp_path, Config(seed=0), ds) != fp
    # the sites' features in the ensemble store are read (groups, training periods): they count; the study's
    # metrics are not read (the transfer runs beside the evaluation): they do not
    fp = _fingerprint(tmp_path, Config(seed=0), ds)
    (tmp_path / "metrics.json").write_text('{"records": [1]}')
    assert _fingerprint(tmp_path, Config(seed=0), ds) == fp
    (tmp_path / "ensemble" / "features").mkdir(parents=True)
    (tmp_path / "ensemble" / "features" / "SYN-A.nc").write_bytes(b"features")
    assert _fingerprint(tmp_path, Config(seed=0), ds) != fp
    fp = _fingerprint(tmp_path, Config(seed=0), ds)
    (tmp_path / "ensemble" / "features" / "SYN-A.nc").write_bytes(b"other features")
    assert _fingerprint(tmp_path, Config(seed=0), ds) != fp
