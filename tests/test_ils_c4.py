"""C4 photosynthesis (Collatz et al. 1992) beside C3, and the per-site C4 fraction rule."""

import numpy as np
import pandas as pd
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.errors import ModelError
from mdpl.ils import EmbeddedLSM
from mdpl.ils.c4 import c4_fraction, climate_c4_share
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE
from mdpl.ils.photosynthesis import canopy_photosynthesis


def _gross(tc, c4_frac):
    t = torch.tensor([tc + 273.15], dtype=torch.float64)
    one = torch.ones_like(t)
    gross, *_ = canopy_photosynthesis(60.0 * one, 9.0 * one, t, 600.0 * one, 380.0 * one, 0.5 * one, 3.0 * one,
                                      1.0e5 * one, torch.tensor([c4_frac], dtype=torch.float64))
    return float(gross)


def test_c4_keeps_assimilating_in_heat_where_c3_falls():
    c3 = {tc: _gross(tc, 0.0) for tc in (10, 25, 30, 38)}
    c4 = {tc: _gross(tc, 1.0) for tc in (10, 25, 30, 38)}
    assert c3[38] < c3[30]  # photorespiration and inhibition: C3 falls past its optimum
    assert c4[38] > 0.95 * c4[30]  # the CO2 pump: C4 holds up
    assert c4[38] > 1.2 * c3[38] and c4[30] > c3[30]
    assert c4[10] < c3[10]  # C4 grasses are cold-limited
    # a mixed canopy lies between its two pathways, linearly in the fraction
    assert _gross(38, 0.5) == pytest.approx(0.5 * (c3[38] + c4[38]), rel=1e-9)


def test_c4_fraction_rule_by_igbp_climate_and_attribute():
    time = pd.date_range("2005-01-01", periods=365 * 48, freq="30min")
    month = time.month.values
    hot = np.where((month >= 11) | (month <= 3), 299.0, 290.0)  # warm wet summers (southern hemisphere)
    cool = np.full(len(time), 287.0)  # never warm enough for C4
    wet = np.full(len(time), 60.0 / (30 * 86400))  # 60 mm per month
    assert climate_c4_share(time, hot, wet, 1800.0) == pytest.approx(5 / 12)
    assert climate_c4_share(time, cool, wet, 1800.0) == 0.0
    assert c4_fraction("x", "SAV", {}, time, hot, wet, 1800.0) == pytest.approx(0.7 * 5 / 12)
    assert c4_fraction("x", "ENF", {}, time, hot, wet, 1800.0) == 0.0  # forests: no grass layer
    assert c4_fraction("x", "ENF", {"c4_fraction": 0.4}, time, hot, wet, 1800.0) == 0.4  # attribute wins
    with pytest.raises(ModelError, match="site x: attribute c4_fraction=1.5"):
        c4_fraction("x", "GRA", {"c4_fraction": 1.5}, time, hot, wet, 1800.0)


@pytest.mark.realdata
def test_kruger_savanna_runs_as_c4(real_data_dir):
    from mdpl.data import load_sites

    m = EmbeddedLSM(device="cpu")
    sites = load_sites(real_data_dir, sites=["ZA-Kru", "FI-Hyy"])
    fr = m._c4_fractions(m.forcing([d.isel(time=slice(0, 17520)) for d in sites]))
    assert fr[0] >= 0.5 and fr[1] == 0.0


def test_c4_site_in_the_model_batch_equals_one_by_one_and_has_gradients():
    hot = site_twin("ZA-Kru", years=4 / 365.25, start="2005-01-10")
    c3 = hot.copy()
    c3.attrs = dict(hot.attrs, c4_fraction=0.0, site="ZA-Kru-C3")
    hot.attrs["c4_fraction"] = 1.0
    m = EmbeddedLSM(device="cpu", dtype=torch.float64)
    p = torch.tensor(SPACE.defaults("SAV"), dtype=torch.float64, requires_grad=True)
    both = m.simulate([hot, c3], p, spinup=False)
    # hot midday (air above 30 degC, bright): the C4 canopy assimilates more
    day = torch.as_tensor((hot["SWdown"].values > 500) & (hot["Tair"].values > 303.15))
    assert day.sum() > 5
    assert both["GPP"][0, day].mean() > both["GPP"][1, day].mean()
    for i, ds in enumerate((hot, c3)):
        one = m.simulate(ds, p.detach(), spinup=False)
        torch.testing.assert_close(one["Qle"][0], both["Qle"][i].detach())
        torch.testing.assert_close(one["GPP"][0], both["GPP"][i].detach())
    both["GPP"][0].sum().backward()
    g = p.grad[SPACE.index("vcmax25")]
    assert torch.isfinite(p.grad).all() and g != 0
