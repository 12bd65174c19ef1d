"""ParameterSpace: bounds, per-IGBP defaults, unit-cube maps, validation, dict round trips."""

import numpy as np
import pytest
import torch

from mdpl.errors import ModelError
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.parameters import ParameterSpace


def test_about_ten_named_parameters_with_units_and_bounds():
    assert 9 <= SPACE.n <= 12
    assert len(SPACE.names) == len(SPACE.units) == SPACE.n == len(set(SPACE.names))
    assert np.all(SPACE.lower < SPACE.upper)
    for required in ("vcmax25", "bb_slope", "bb_intercept", "albedo_canopy", "z0_frac", "root_depth_m",
                     "stress_onset", "rsoil_base", "interception_mm", "resp_base", "q10"):
        assert required in SPACE.names


@pytest.mark.parametrize("igbp", ["ENF", "EBF", "DBF", "MF", "SAV", "WSA", "GRA", "CRO", "OSH", "WET"])
def test_defaults_lie_inside_bounds_and_differ_by_pft(igbp):
    d = SPACE.defaults(igbp)
    assert d.shape == (SPACE.n,)
    assert np.all(d >= SPACE.lower) and np.all(d <= SPACE.upper)
    SPACE.validate(d)
    assert SPACE.defaults(igbp.lower()).tolist() == d.tolist()  # case-insensitive


def test_pft_table_has_physical_contrasts():
    crop, forest, grass = SPACE.defaults("CRO"), SPACE.defaults("EBF"), SPACE.defaults("GRA")
    i = SPACE.index
    assert forest[i("root_depth_m")] > grass[i("root_depth_m")]  # trees root deeper
    assert forest[i("albedo_canopy")] < grass[i("albedo_canopy")]  # dark forest canopies
    assert crop[i("vcmax25")] > forest[i("vcmax25")]  # fertilised crops


def test_unknown_igbp_is_a_model_error_naming_it():
    with pytest.raises(ModelError, match="XYZ"):
        SPACE.defaults("XYZ")


def test_unit_cube_round_trip_numpy_and_torch_with_log_scales():
    rng = np.random.default_rng(0)
    u = rng.random((50, SPACE.n))
    x = SPACE.from_unit(u)
    assert np.all(x >= SPACE.lower - 1e-12) and np.all(x <= SPACE.upper + 1e-12)
    np.testing.assert_allclose(SPACE.to_unit(x), u, atol=1e-12)
    np.testing.assert_allclose(SPACE.from_unit(np.zeros(SPACE.n)), SPACE.lower)
    np.testing.assert_allclose(SPACE.from_unit(np.ones(SPACE.n)), SPACE.upper)
    # log-scaled parameters map the geometric mean to 0.5
    j = SPACE.index("rsoil_base")
    assert SPACE.log[j]
    mid = SPACE.from_unit(np.full(SPACE.n, 0.5))
    assert mid[j] == pytest.approx(np.sqrt(SPACE.lower[j] * SPACE.upper[j]))
    ut = torch.tensor(u, requires_grad=True)
    xt = SPACE.from_unit(ut)
    np.testing.assert_allclose(xt.detach().numpy(), x, rtol=1e-12)
    xt.sum().backward()
    assert torch.all(ut.grad > 0)


def test_validate_names_the_parameter_out_of_bounds():
    x = SPACE.defaults("GRA")
    x[SPACE.index("q10")] = 9.0
    with pytest.raises(ModelError, match="q10"):
        SPACE.validate(x)
    x = SPACE.defaults("GRA")
    x[SPACE.index("vcmax25")] = np.nan
    with pytest.raises(ModelError, match="vcmax25"):
        SPACE.validate(x)
    with pytest.raises(ModelError, match="last dimension"):
        SPACE.validate(np.zeros(3))


def test_restrict_and_dicts():
    lo, hi = SPACE.lower.copy(), SPACE.upper.copy()
    hi[0] = 100.0
    sub = SPACE.restrict(lo, hi)
    assert isinstance(sub, ParameterSpace) and sub.upper[0] == 100.0 and sub.names == SPACE.names
    assert sub.defaults("CRO")[0] <= 100.0
    with pytest.raises(ModelError, match="vcmax25"):
        SPACE.restrict(lo, np.where(np.arange(SPACE.n) == 0, 500.0, hi))
    d = SPACE.to_dict(SPACE.defaults("ENF"))
    assert list(d) == SPACE.names
    np.testing.assert_allclose(SPACE.from_dict(d), SPACE.defaults("ENF"))
    part = SPACE.from_dict({"vcmax25": 33.0}, igbp="GRA")
    assert part[0] == 33.0 and part[1] == SPACE.defaults("GRA")[1]
    with pytest.raises(ModelError, match="bogus"):
        SPACE.from_dict({"bogus": 1.0}, igbp="GRA")
    with pytest.raises(ModelError, match="missing"):
        SPACE.from_dict({"vcmax25": 33.0})
