"""The ALMA reader on the real sites (whichever are present) and on synthetic files in both dialects."""

from __future__ import annotations

import shutil

import netCDF4
import numpy as np
import pytest
import xarray as xr
from data_helpers import real_sites as cached_real_sites
from data_helpers import synthetic_with_fluxes

from mdpl.data import find_sites, read_site, solar
from mdpl.data.catalogue import pft_group, site_info
from mdpl.data.fill import filled_dict
from mdpl.data.schema import FLUX_VARS, FORCING_VARS, SITE_ATTRS, measured_name
from mdpl.data.writer import write_alma

#: what is known about the shipped towers: (first step, number of half-hourly steps, PFT group, UTC offset h).
#: Tests check these only for the towers present; every tower must also pass the generic checks.
KNOWN = {
    "CN-Cng": ("2008-01-01", 35088, "grassland", 8.0),
    "DK-Fou": ("2005-01-01", 17520, "cultivation", 1.0),
    "ES-ES2": ("2005-01-01", 35040, "cultivation", 0.0),
    "FI-Hyy": ("2001-01-01", 17520, "evergreen_forest", 2.0),
    "ID-Pag": ("2002-01-01", 35040, "evergreen_forest", 7.5),
    "IT-Amp": ("2003-01-01", 35088, "grassland", 1.0),
    "US-Syv": ("2002-01-01", 35040, "MF", -6.0),
    "ZA-Kru": ("2002-01-01", 35040, "woodland", 2.0),
}


def _snapshot(d):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in d.rglob("*")}


@pytest.fixture(scope="module")
def data_dir_snapshot(real_data_dir):
    return _snapshot(real_data_dir)


@pytest.fixture(scope="module")
def real_sites(real_data_dir, data_dir_snapshot):
    return cached_real_sites(real_data_dir)


def test_data_dir_untouched(real_data_dir, real_sites, data_dir_snapshot):
    """Reading every real site writes nothing into the data directory (listing, sizes, mtimes)."""
    assert _snapshot(real_data_dir) == data_dir_snapshot


# ------------------------------------------------------------------ real files
def test_finds_all_sites(real_data_dir):
    """Every Met file under the data directory is one catalogue site with its Flux file (any number of towers)."""
    found = find_sites(real_data_dir)
    mets = [p for p in real_data_dir.rglob("*.nc") if p.stem.lower().endswith("_met")]
    assert len(found) == len(mets) > 0  # no site shown twice here (each tower is in one dialect only)
    for code, sf in found.items():
        assert site_info(code)["site"] == code  # a PLUMBER2 code, also for PALS stems
        assert sf.flux is not None and sf.flux.is_file(), code
        assert sf.dialect == ("pals" if sf.met.parent.name == "pals" else "plumber2"), code
    if "ZA-Kru" in found:
        assert found["ZA-Kru"].met.name == "KrugerFluxnet.1.4_met.nc" and found["ZA-Kru"].dialect == "pals"
    if "CN-Cng" in found:
        assert found["CN-Cng"].site_file.name.endswith("_site.nc")


def test_real_sites_canonical(real_sites):
    """Whole years of regular half-hourly steps stamped at step start; PFT from IGBP; units and finite forcing."""
    for code, ds in real_sites.items():
        t = ds.time.values
        assert ds.attrs["time_step_s"] == 1800
        assert str(t[0])[5:19] == "01-01T00:00:00", code  # step starts, also for PALS (00:30 = end)
        assert str(t[-1])[5:19] == "12-31T23:30:00", code  # whole calendar years
        assert np.all(np.diff(t) == np.timedelta64(1800, "s")), code
        assert ds.attrs["pft_group"] == pft_group(ds.attrs["igbp"]), code
        assert ds.attrs["igbp"] == site_info(code)["igbp"], code
        if code in KNOWN:
            start, n, pft, _ = KNOWN[code]
            assert str(t[0])[:10] == start and ds.sizes["time"] == n and ds.attrs["pft_group"] == pft, code
        for a in SITE_ATTRS:
            assert a in ds.attrs, (code, a)
        for v, u in {**FORCING_VARS, **FLUX_VARS}.items():
            assert ds[v].attrs["units"] == u
        for v in FORCING_VARS:
            assert np.isfinite(ds[v].values).all(), (code, v)


def test_real_plausible_ranges(real_sites):
    for code, ds in real_sites.items():
        assert 230 < ds["Tair"].min() and ds["Tair"].max() < 320, code
        assert ds["SWdown"].min() >= 0 and 800 < ds["SWdown"].max() < 1400, code
        assert 100 < ds["LWdown"].mean() < 460, code
        assert 9e4 < ds["Psurf"].mean() < 1.03e5, code
        assert 0 < ds["Wind"].mean() < 8, code
        assert 330 < ds["CO2air"].median() < 400, code
        assert 0 <= ds["LAI"].min() and ds["LAI"].max() < 8, code
        annual_mm = float((ds["Rainf"] + ds["Snowf"]).sum()) * 1800 / (ds.sizes["time"] / 17520)
        assert 150 < annual_mm < 5000, (code, annual_mm)
        assert ds["Qle_measured"].mean() > 0.3, code
        assert -50 < ds["Qle"].mean() < 200, code


def test_nee_positive_at_night(real_sites):
    """NEE is positive upward (respiration) at night at every site: the sign convention survives."""
    for code, ds in real_sites.items():
        night = (ds["SWdown"].values < 1) & ds["NEE_measured"].values
        assert np.nanmean(ds["NEE"].values[night]) > 0, code


def _diurnal_centre_h(utc: np.ndarray, x: np.ndarray) -> float:
    """Circular centroid (UTC hour of the step centre) of the mean daily cycle of ``x`` on half-hourly steps."""
    half_hours = ((utc - utc.astype("datetime64[D]")) // np.timedelta64(1800, "s")).astype(int) % 48
    cycle = np.bincount(half_hours, x, 48) / np.maximum(np.bincount(half_hours, None, 48), 1)
    angle = np.angle(np.sum(cycle * np.exp(2j * np.pi * np.arange(48) / 48)))
    return (angle / (2 * np.pi) * 24 + 0.25) % 24


def test_swdown_follows_the_sun(real_sites):
    """With the estimated UTC offset, SWdown keeps the sun's timing and stays inside its clear-sky envelope.

    Timing: the centroid of the mean daily SWdown cycle lies within 0.3 h of the top-of-atmosphere one (half a
    step; a wrong offset or start/end stamp moves it by >= 0.5 h), and no shift of up to 3 steps correlates
    better. Envelope: clear days reach 0.6-1.0 of TOA. A correlation threshold would instead measure cloudiness:
    FI-Hyy (61.8 N) has r = 0.84 with exact timing, because its median clearness is 0.39 (0.60 at CN-Cng).
    """
    for code, ds in real_sites.items():
        utc = ds.time.values - np.timedelta64(int(ds.attrs["utc_offset_h"] * 3600), "s")
        toa = solar.toa_step_mean(utc, 1800, ds.attrs["latitude"], ds.attrs["longitude"])
        sw = ds["SWdown"].values
        assert np.mean(sw[toa == 0]) < 5, code
        gap = (_diurnal_centre_h(utc, sw) - _diurnal_centre_h(utc, toa) + 12) % 24 - 12
        assert abs(gap) < 0.3, (code, gap)
        r_by_shift = {k: np.corrcoef(np.roll(sw, k), toa)[0, 1] for k in range(-3, 4)}
        assert max(r_by_shift, key=r_by_shift.get) == 0, (code, r_by_shift)
        day = toa > 200  # away from sunrise/sunset, where step means are noisy
        clearness = sw[day] / toa[day]
        assert 0.6 < np.quantile(clearness, 0.95) and np.quantile(clearness, 0.99) < 1.0, code
        assert r_by_shift[0] > 0.75, code  # cloud lowers r; this only catches noise or a broken series
        if code in KNOWN:
            assert ds.attrs["utc_offset_h"] == KNOWN[code][3], code


def _raw_qc(path, name):
    with netCDF4.Dataset(path) as d:
        d.set_auto_mask(False)
        return np.asarray(d.variables[name][:], dtype=float).ravel(), np.asarray(d.variables[name.replace("_qc", "")][:],
                                                                                 dtype=float).ravel()


def test_measured_fraction_matches_raw_flags(real_data_dir, real_sites):
    """PLUMBER2: measured = flag 0; PALS (inverted): measured = flag 1 -- compared with the raw files."""
    found = find_sites(real_data_dir)
    for code, ds in real_sites.items():
        sf = found[code]
        good = 1.0 if sf.dialect == "pals" else 0.0
        for f in ("Qle", "Qh", "NEE"):
            qc, vals = _raw_qc(sf.flux, f + "_qc")
            expect = np.mean((qc == good) & (np.abs(vals) < 1e30) & (vals != -9999))
            assert ds[measured_name(f)].mean() == pytest.approx(expect, abs=1e-12), (code, f)
    # the PALS inversion matters: ES-ES2 Qle is flagged observed 98.9 % of the time, not 1.1 %
    assert real_sites["ES-ES2"]["Qle_measured"].mean() > 0.9


def test_fills_recorded(real_sites):
    cng, fou, kru, pag = (filled_dict(real_sites[c].attrs) for c in ("CN-Cng", "DK-Fou", "ZA-Kru", "ID-Pag"))
    assert "CO2air" not in fou and "LAI" not in fou  # DK-Fou's Met has both
    assert cng["CO2air"].startswith("NOAA") and cng["LAI"].startswith("monthly LAI of the site file")
    assert kru["LAI"].startswith("PFT climatology (SAV, southern")
    assert kru["igbp"] == "catalogue" and "Snowf" in kru
    assert pag["latitude"].startswith("catalogue")  # PALS Palang has the latitude's sign flipped
    assert real_sites["ID-Pag"].attrs["latitude"] < 0
    assert "GPP" in real_sites["ZA-Kru"].attrs["absent"].split(",")  # PALS GPP is never written
    assert "implausibly dry" in real_sites["ZA-Kru"].attrs["warnings"]
    # CN-Cng: Met's extra step (2010-01-01 00:00) dropped to match Flux; LAI from the site file's 2008 July value
    ds = real_sites["CN-Cng"]
    assert str(ds.time.values[-1])[:16] == "2009-12-31T23:30"
    jul15 = ds["LAI"].sel(time="2008-07-15T00:00").item()
    assert jul15 == pytest.approx(1.8, abs=0.02)
    assert ds.attrs["igbp"] == "GRA" and ds.attrs["reference_height_m"] == 6.0


def test_stamp_conventions_on_real_copy(real_data_dir, tmp_path):
    """The same real Met file stamped at step start, middle or end reads to identical step starts."""
    src = real_data_dir / "plumber2/DK-Fou_2005-2005_FLUXNET2015_Met.nc"
    ref = read_site(src)
    for shift, stamp in ((900, "middle"), (1800, "end")):
        dst = tmp_path / f"DK-Fou_2005-2005_FLUXNET2015_{stamp}_Met.nc"
        shutil.copy(src, dst)
        dst.chmod(0o644)
        with netCDF4.Dataset(dst, "a") as d:
            d.variables["time"][:] = d.variables["time"][:] + shift
        ds = read_site(dst)
        assert ds.attrs["time_stamp_in_file"] == stamp
        np.testing.assert_array_equal(ds.time.values, ref.time.values)
        np.testing.assert_allclose(ds["Tair"].values, ref["Tair"].values)


def test_hourly_real_copy(real_data_dir, tmp_path):
    """An hourly version of a PALS file (stamps at hour ends) reads as hourly with step starts."""
    src = real_data_dir / "pals/PalangFluxnet.1.4_met.nc"
    with xr.open_dataset(src, decode_times=False) as raw:
        raw = raw.load()
    hourly = raw.isel(time=slice(1, None, 2))  # stamps 01:00, 02:00, ... (seconds since 00:30 -> +1800)
    hourly.encoding = {}  # an unlimited time dimension makes netCDF4 writes/reads crawl
    dst = tmp_path / "PalangFluxnet.1.4_met.nc"
    hourly.to_netcdf(dst)
    ds = read_site(dst)
    assert ds.attrs["time_step_s"] == 3600 and ds.attrs["time_stamp_in_file"] == "end"
    assert str(ds.time.values[0])[:16] == "2002-01-01T00:00"


# ------------------------------------------------------------------ synthetic files (always run)
@pytest.mark.parametrize("dialect", ["plumber2", "pals"])
@pytest.mark.parametrize("stamp", ["start", "middle", "end"])
@pytest.mark.parametrize("step", [1800, 3600])
def test_roundtrip_synthetic(tmp_path, dialect, stamp, step):
    from mdpl.data.synthetic import site_twin

    ds = site_twin("ZA-Kru", years=0.05, time_step_s=step)
    src = synthetic_with_fluxes("ZA-Kru", years=0.05) if step == 1800 else ds
    if step == 3600:
        n = ds.sizes["time"]
        ds["Qle"][:] = 10.0
        ds["Qh"][:] = 5.0
        ds["Qle_measured"][:] = np.arange(n) % 2 == 0
        ds["Qh_measured"][:] = True
        src = ds
    sf = write_alma(src, tmp_path, dialect=dialect, stamp=stamp)
    got = read_site(sf.met, sf.flux)
    assert got.attrs["time_step_s"] == step and got.attrs["time_stamp_in_file"] == stamp
    np.testing.assert_array_equal(got.time.values, src.time.values)
    for v in ("SWdown", "LWdown", "Tair", "Wind", "Psurf"):
        np.testing.assert_allclose(got[v].values, src[v].values, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(got["Rainf"] + got["Snowf"], src["Rainf"] + src["Snowf"], rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(got["Qle_measured"].values, src["Qle_measured"].values)
    assert got.attrs["source"] == dialect
    assert got.attrs["site"] == "ZA-Kru" and got.attrs["igbp"] == "SAV"
    assert got.attrs["utc_offset_h"] == src.attrs["utc_offset_h"]  # estimated from SWdown, recovers the truth
    if dialect == "pals":
        assert "CO2air" in filled_dict(got.attrs) and "LAI" in filled_dict(got.attrs)


def test_stamp_override(tmp_path):
    from mdpl.data.synthetic import site_twin

    sf = write_alma(site_twin("DK-Fou", years=0.02), tmp_path, stamp="start")
    a = read_site(sf.met, stamp="end")
    b = read_site(sf.met)
    assert (b.time.values - a.time.values == np.timedelta64(1800, "s")).all()


def test_canonical_dataset_saves_and_reloads(tmp_path):
    """Results are files a user can open: the canonical Dataset (and its aggregates) round-trip through netCDF."""
    from mdpl.data.aggregate import daily

    ds = synthetic_with_fluxes("DK-Fou", years=0.05)
    for d in (ds, daily(ds)):
        path = tmp_path / "site.nc"
        d.to_netcdf(path)
        back = xr.load_dataset(path)
        xr.testing.assert_identical(back, d)
