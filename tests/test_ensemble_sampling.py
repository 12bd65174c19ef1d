"""Parameter designs: inside the bounds (log scales too), space filling, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from mdpl.ensemble import sample_parameters, site_seed, unit_design
from mdpl.ils.parameters import PARAMETER_SPACE


@pytest.mark.parametrize("method", ["sobol", "lhs"])
def test_inside_bounds_and_seeded(method):
    sp = PARAMETER_SPACE
    a = sample_parameters(sp, 100, method, seed=3)
    assert a.shape == (100, sp.n)
    assert np.all(a >= sp.lower) and np.all(a <= sp.upper)
    np.testing.assert_array_equal(a, sample_parameters(sp, 100, method, seed=3))
    assert not np.allclose(a, sample_parameters(sp, 100, method, seed=4))
    sp.validate(a)


def test_log_parameters_fill_log_space():
    sp = PARAMETER_SPACE
    j = int(np.flatnonzero(sp.log)[0])
    a = sample_parameters(sp, 256, "sobol", seed=0)[:, j]
    # uniform in log: the geometric midpoint splits the sample in half
    mid = np.sqrt(sp.lower[j] * sp.upper[j])
    assert abs(np.mean(a < mid) - 0.5) < 0.05


def test_lhs_one_point_per_stratum():
    u = unit_design(50, 6, "lhs", seed=1)
    for j in range(6):
        assert sorted(np.floor(u[:, j] * 50).astype(int)) == list(range(50))


def test_sobol_beats_random_discrepancy():
    u = unit_design(128, 5, "sobol", seed=0)
    r = np.random.default_rng(0).random((128, 5))
    assert qmc.discrepancy(u) < 0.5 * qmc.discrepancy(r)


def test_unknown_sampler_and_site_seeds():
    with pytest.raises(ValueError, match="unknown sampler"):
        unit_design(4, 2, "grid")
    assert site_seed(0, "DK-Fou") == site_seed(0, "DK-Fou") != site_seed(0, "CN-Cng")
    assert site_seed(0, "DK-Fou") != site_seed(1, "DK-Fou")
