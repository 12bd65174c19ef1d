"""Bad input -> mdpl.DataError naming the file and the problem; the data directory is never written.

Each case runs on copies of real files corrupted in tmp_path (when the real
data are at hand) and on synthetic files written to tmp_path (always).
"""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import make_pair, rewrite

from mdpl import DataError
from mdpl.data import load_sites, read_site, site_info

KINDS = ["synthetic-plumber2", "synthetic-pals", "real-plumber2", "real-pals"]


@pytest.fixture(params=KINDS)
def pair(request, tmp_path):
    real = request.getfixturevalue("real_data_dir") if request.param.startswith("real") else None
    return make_pair(request.param, tmp_path / "files", real)


def _raises(match, *args, **kw):
    with pytest.raises(DataError, match=match) as e:
        read_site(*args, **kw)
    return str(e.value)


def test_good_pair_reads(pair):
    met, flux = pair
    ds = read_site(met, flux)
    assert ds["Qle_measured"].any()


def test_missing_file(pair, tmp_path):
    met, flux = pair
    msg = _raises("file not found", tmp_path / "nope_Met.nc")
    assert "nope_Met.nc" in msg
    _raises("file not found", met, tmp_path / "gone_Flux.nc")


def test_truncated_file(pair):
    met, flux = pair
    data = met.read_bytes()
    met.write_bytes(data[: len(data) // 3])
    msg = _raises("truncated|unreadable", met, flux)
    assert str(met) in msg


def test_not_netcdf(pair):
    met, flux = pair
    flux.write_text("site,Qle\nDK-Fou,12\n")
    msg = _raises("not a netCDF file", met, flux)
    assert flux.name in msg


def test_no_time_axis(pair):
    met, flux = pair
    rewrite(met, lambda raw: raw.isel(time=0, drop=True))
    msg = _raises("no time axis", met, flux)
    assert met.name in msg


def test_missing_required_variable(pair):
    met, flux = pair
    rewrite(met, lambda raw: raw.drop_vars("LWdown"))
    msg = _raises("required variable LWdown is missing", met, flux)
    assert met.name in msg


def test_tair_in_celsius(pair):
    met, flux = pair

    def to_celsius(raw):
        raw["Tair"] = raw["Tair"] - 273.15  # units attribute still says K
        raw["Tair"].attrs["units"] = "K"
        return raw

    rewrite(met, to_celsius)
    _raises("apparently degrees Celsius", met, flux)


def test_negative_swdown_beyond_noise(pair):
    met, flux = pair

    def negative(raw, value):
        sw = raw["SWdown"].values.copy()
        sw.reshape(-1)[5] = value
        raw["SWdown"].values = sw
        return raw

    rewrite(met, lambda raw: negative(raw, -3.0))  # noise: clipped to zero and noted
    ds = read_site(met, flux)
    assert ds["SWdown"].min() == 0 and "SWdown_negative" in ds.attrs["filled"]
    rewrite(met, lambda raw: negative(raw, -50.0))
    msg = _raises("negative SWdown beyond noise", met, flux)
    assert "-50" in msg


def test_all_nan_flux(pair):
    met, flux = pair

    def blank(raw):
        raw["Qle"] = raw["Qle"] * np.nan
        return raw

    rewrite(flux, blank)
    msg = _raises("flux Qle is all missing", met, flux)
    assert flux.name in msg


def test_impossible_units(pair):
    met, flux = pair

    def furlongs(raw):
        raw["Wind"].attrs["units"] = "furlongs/fortnight"
        return raw

    rewrite(met, furlongs)
    _raises("units 'furlongs/fortnight'", met, flux)


def test_unknown_site_code(tmp_path):
    with pytest.raises(DataError, match="unknown site code 'DK-Fuo'.*DK-Fou"):
        site_info("DK-Fuo")
    from data_helpers import synthetic_with_fluxes

    from mdpl.data.writer import write_alma

    write_alma(synthetic_with_fluxes("DK-Fou", years=0.02), tmp_path)
    with pytest.raises(DataError, match="unknown site code 'XX-Bad'"):
        load_sites(tmp_path, sites=["XX-Bad"])
    with pytest.raises(DataError, match="no files for site ZA-Kru"):
        load_sites(tmp_path, sites=["ZA-Kru"])
    with pytest.raises(DataError, match="no flux-tower files"):
        load_sites(tmp_path / "empty_but_exists" if (tmp_path / "empty_but_exists").mkdir() is None else None)
    with pytest.raises(DataError, match="not found"):
        load_sites(tmp_path / "does-not-exist")
