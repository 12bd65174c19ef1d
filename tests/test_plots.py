"""Figure helpers: geometry of the Taylor diagram, data carried by series/bars/maps, tables."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mdpl.evaluate.metrics import taylor_stats  # noqa: E402
from mdpl.plots import (  # noqa: E402
    metric_bars,
    plot_series,
    site_map,
    styled_table,
    taylor_coords,
    taylor_diagram,
    taylor_diagram_from_series,
    text_table,
)


def _by_gid(ax, gid):
    hits = [c for c in ax.collections if c.get_gid() == gid]
    assert len(hits) == 1, f"expected one artist with gid {gid!r}, found {len(hits)}"
    return hits[0]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_taylor_point_positions_match_stats_and_law_of_cosines():
    rng = np.random.default_rng(1)
    obs = np.sin(np.linspace(0, 20, 500)) * 80 + 100 + rng.normal(0, 10, 500)
    sims = {
        "default": 0.5 * obs + rng.normal(0, 30, 500),
        "mdpl": 1.1 * obs + rng.normal(0, 8, 500) + 20,  # offset: bias is not in the centred RMSD
        "dpl": 0.9 * obs + rng.normal(0, 15, 500),
    }
    fig, ax = taylor_diagram_from_series(obs, sims, arrows=[("default", "mdpl")])
    for label, sim in sims.items():
        st = taylor_stats(obs, sim)
        # independent numbers: numpy's SD and correlation
        sd_ratio = np.std(sim) / np.std(obs)
        r = np.corrcoef(obs, sim)[0, 1]
        (x, y), = _by_gid(ax, label).get_offsets()
        assert math.hypot(x, y) == pytest.approx(sd_ratio, rel=1e-9)  # radius = normalised SD
        assert math.cos(math.atan2(y, x)) == pytest.approx(r, rel=1e-9)  # angle = arccos(R)
        # the distance to the reference star is the centred RMS difference / sd_obs
        crmsd = np.sqrt(np.mean(((sim - sim.mean()) - (obs - obs.mean())) ** 2)) / np.std(obs)
        assert math.hypot(x - 1.0, y) == pytest.approx(crmsd, rel=1e-9)
        assert st["crmsd"] == pytest.approx(crmsd, rel=1e-9)
    (xr, yr), = _by_gid(ax, "observed").get_offsets()
    assert (xr, yr) == (1.0, 0.0)
    assert len([t for t in ax.texts if isinstance(t, matplotlib.text.Annotation)]) == 1  # the default -> mdpl arrow
    assert ax.get_xlim()[0] == 0  # no negative correlation: quarter circle


def test_taylor_known_answers_and_negative_correlation():
    obs = np.arange(10.0)
    assert taylor_coords(2.0, 1.0) == pytest.approx((2.0, 0.0))
    fig, ax = taylor_diagram_from_series(obs, {"double": 2 * obs, "anti": -obs})
    (x, y), = _by_gid(ax, "double").get_offsets()
    assert (x, y) == pytest.approx((2.0, 0.0), abs=1e-6)  # R = 1, twice the variability: RMSD = 1 SD
    (x, y), = _by_gid(ax, "anti").get_offsets()
    assert (x, y) == pytest.approx((-1.0, 0.0), abs=1e-6)
    assert ax.get_xlim()[0] < -1.0  # R < 0 opens the half circle


def test_taylor_skips_nan_points_and_rejects_bad_input():
    fig, ax = taylor_diagram({"ok": {"sd_ratio": 0.8, "r": 0.7}, "empty": {"sd_ratio": math.nan, "r": math.nan}})
    assert [c.get_gid() for c in ax.collections if c.get_gid() in ("ok", "empty")] == ["ok"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "empty (n/a)" in labels
    with pytest.raises(TypeError, match="points"):
        taylor_diagram([1, 2, 3])


def test_series_keeps_gaps_and_labels_units():
    t = pd.date_range("2005-01-01", periods=30, freq="D")
    obs = pd.Series(np.linspace(10, 40, 30), index=t)
    obs.iloc[5:8] = np.nan
    sim = pd.Series(np.linspace(12, 38, 30), index=t)
    fig, ax = plot_series(obs, {"mdpl": sim}, var="Qle", units="W m-2", scale="daily")
    lines = {line.get_gid(): line for line in ax.lines}
    y = np.asarray(lines["observed"].get_ydata(), dtype=float)
    assert np.isnan(y[5:8]).all() and np.isfinite(y[:5]).all()  # gaps are not interpolated
    np.testing.assert_allclose(lines["mdpl"].get_ydata(), sim.to_numpy())
    assert "W m-2" in ax.get_ylabel() and "Qle" in ax.get_ylabel()


def test_series_accepts_xarray():
    xr = pytest.importorskip("xarray")
    t = pd.date_range("2005-01-01", periods=12, freq="MS")
    da = xr.DataArray(np.arange(12.0), coords={"time": t}, dims="time")
    fig, ax = plot_series(da, {"default": da * 2}, scale="monthly")
    assert len(ax.lines[0].get_xdata()) == 12


def test_site_map_wraps_longitude_and_groups_by_pft():
    sites = pd.DataFrame({
        "site": ["A", "B", "C"], "latitude": [55.0, -25.0, 10.0], "longitude": [9.0, 190.0, -60.0],
        "pft_group": ["cropland", "savanna", "cropland"],
    })
    fig, ax = site_map(sites)
    crop = _by_gid(ax, "cropland").get_offsets()
    sav = _by_gid(ax, "savanna").get_offsets()
    assert len(crop) == 2 and len(sav) == 1
    assert tuple(sav[0]) == pytest.approx((-170.0, -25.0))  # 190 E is 170 W
    with pytest.raises(ValueError, match="latitude"):
        site_map(sites.drop(columns="latitude"))


def test_metric_bars_heights_are_group_means():
    df = pd.DataFrame({
        "site": ["A", "A", "A", "B", "B"],
        "source": ["default", "mdpl", "mdpl", "default", "mdpl"],
        "rmse": [30.0, 10.0, 20.0, 40.0, 25.0],
    })
    fig, ax = metric_bars(df, value="rmse", units="W m-2")
    heights = {c.get_label(): [b.get_height() for b in c] for c in ax.containers}
    assert heights["mdpl"] == pytest.approx([15.0, 25.0])
    assert heights["default"] == pytest.approx([30.0, 40.0])
    assert "W m-2" in ax.get_ylabel()
    with pytest.raises(ValueError, match="kge"):
        metric_bars(df, value="kge")


def _kge_table():
    idx = pd.MultiIndex.from_tuples(
        [("cropland", "DK-Fou"), ("cropland", "ES-ES2"), ("grassland", "CN-Cng"), ("savanna", "ZA-Kru")],
        names=["pft_group", "site"])
    return pd.DataFrame({"default": [0.1, 0.2, 0.3, 0.4], "mdpl": [0.5, 0.6, np.nan, 0.8]}, index=idx)


def test_styled_table_separates_groups_and_is_deterministic():
    table = _kge_table()
    html = styled_table(table, caption="KGE (dimensionless)", highlight="max").to_html()
    assert "KGE (dimensionless)" in html
    # two group changes: the rows of ES-ES2 -> CN-Cng and CN-Cng -> ZA-Kru start with a rule
    assert html.count("border-top: 2px solid black") >= 2
    assert html == styled_table(table, caption="KGE (dimensionless)", highlight="max").to_html()


def test_text_table_draws_a_rule_between_groups():
    text = text_table(_kge_table())
    rules = [line for line in text.splitlines() if set(line) == {"-"}]
    assert len(rules) == 3  # under the header + two group changes
    assert "0.50" in text and "-" in text.splitlines()[-2]  # NaN printed as '-'


def test_heatmap_shows_the_table_values():
    from mdpl.plots import heatmap

    table = pd.DataFrame({"Qle": [0.9, -0.2], "Qh": [np.nan, -0.8]}, index=["vcmax25", "albedo"])
    fig, ax = heatmap(table, title="sensitivity")
    data = ax.images[0].get_array()
    assert data[0, 0] == pytest.approx(0.9) and data.mask[0, 1] and data[1, 1] == pytest.approx(-0.8)
    texts = [t.get_text() for t in ax.texts]
    assert "0.90" in texts and "n/a" in texts
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vcmax25", "albedo"]


def test_band_spans_the_member_quantiles():
    from mdpl.plots import plot_band

    days = pd.date_range("2005-01-01", periods=5, freq="D")
    members = np.tile(np.arange(101.0)[:, None], (1, 5))  # members 0..100 on every day
    fig, ax = plot_band(days, members, obs=np.full(5, 50.0), var="Qle", units="W m-2")
    band = next(c for c in ax.collections if c.get_gid() == "ensemble")
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == pytest.approx(5.0) and ys.max() == pytest.approx(95.0)


def test_parameter_strip_places_sites_and_defaults():
    from mdpl.plots import parameter_strip

    learned = pd.DataFrame({"vcmax25": [0.2, 0.9], "q10": [0.5, 0.0]}, index=["A", "B"])
    defaults = pd.DataFrame({"vcmax25": [0.4, 0.4], "q10": [0.3, 0.3]}, index=["A", "B"])
    fig, ax = parameter_strip(learned, defaults_unit=defaults)
    xa = _by_gid(ax, "A").get_offsets()[:, 0]
    xb = _by_gid(ax, "B").get_offsets()[:, 0]
    assert list(xa) == [0.2, 0.5] and list(xb) == [0.9, 0.0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vcmax25", "q10"]
    assert "PFT default (open)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_scatter_compare_reports_r2_of_all_pairs():
    from mdpl.plots import scatter_compare

    x = np.arange(100.0).reshape(4, 25)
    y = x + 1.0
    y[0, 0] = np.nan
    fig, ax = scatter_compare(x, y, label="mdpl", units="W m-2", max_points=50)
    assert len(_by_gid(ax, "mdpl").get_offsets()) == 50  # subsampled
    ss = np.sum((x.ravel()[1:] - x.ravel()[1:].mean()) ** 2)
    assert f"R² = {1 - 99 / ss:.3f}" in ax.get_title()
    assert "W m-2" in ax.get_xlabel()


def test_metric_bars_says_no_data_when_empty():
    df = pd.DataFrame({"site": [], "source": [], "kge": []})
    fig, ax = metric_bars(df, value="kge")
    assert ax.get_legend() is None and "no data" in [t.get_text() for t in ax.texts]
