"""Default (uncalibrated) parameters at the real flux-tower sites: daily Qle and Qh follow the towers.

Days count when at least 75 % of their steps were measured (mdpl.data.aggregate.daily).
The whole-record check (with spin-up) is a heavy run (``make test-full``); the default
suite checks one growing season without spin-up. Site/flux pairs known to fall below
r = 0.5, with the physical reason, are listed in KNOWN_WEAK and reported as xfail.
"""

import numpy as np
import pytest
import torch

from mdpl.data import load_sites
from mdpl.data.aggregate import daily
from mdpl.evaluate.metrics import pearson_r, rmse
from mdpl.ils import EmbeddedLSM

pytestmark = pytest.mark.realdata

SITES = ("DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag")
#: (site, flux) -> why the default model cannot reach r >= 0.5 there
_RICE = ("flooded, irrigated rice paddy: the forcing carries no irrigation and the model no standing water, "
         "so from June to September its soil dries while the paddy evaporates freely (Qle too low, Qh too high)")
KNOWN_WEAK: dict[tuple[str, str], str] = {
    ("ES-ES2", "Qle"): _RICE,
    ("ES-ES2", "Qh"): _RICE,
    ("ID-Pag", "Qh"): ("peat-swamp forest on a shallow water table that the freely draining column lacks; the tower's "
                       "Qh is a small residual (mean ~20 W m-2) and in the 2002 El Nino dry season, hazy from peat "
                       "fires, it fell while the model's rose with dry-season water stress"),
}


def daily_skill(ds, res) -> dict[str, tuple[float, float, int]]:
    """flux -> (r, RMSE in W m-2, number of well-measured days) of a daily result against the tower."""
    obs = daily(ds)
    n = min(obs.sizes["time"], res["Qle"].shape[1])
    out = {}
    for flux in ("Qle", "Qh"):
        mask = obs[f"{flux}_measured"].values[:n]
        o, s = obs[flux].values[:n], res[flux][0, :n].detach().cpu().numpy()
        out[flux] = (pearson_r(o, s, mask), rmse(o, s, mask), int(mask.sum()))
    return out


def test_defaults_follow_a_growing_season(real_data_dir):
    ds = load_sites(real_data_dir, sites=["CN-Cng"])[0].sel(time=slice("2008-05-01", "2008-07-31"))
    with torch.no_grad():
        res = EmbeddedLSM(device="cpu").simulate(ds, None, daily=True, spinup=False)
    skill = daily_skill(ds, res)
    print({k: f"r={v[0]:.2f} rmse={v[1]:.1f} W m-2 n={v[2]}" for k, v in skill.items()})
    for flux, (r, err, n) in skill.items():
        assert n >= 60 and r >= 0.5, (flux, r)
        assert err < 60.0, (flux, err)


@pytest.mark.full
@pytest.mark.parametrize("site", SITES)
def test_defaults_follow_each_site_over_its_record(real_data_dir, site):
    ds = load_sites(real_data_dir, sites=[site])[0]
    with torch.no_grad():
        res = EmbeddedLSM(device="cpu").simulate(ds, None, daily=True, spinup=True)
    skill = daily_skill(ds, res)
    print(site, {k: f"r={v[0]:.2f} rmse={v[1]:.1f} W m-2 n={v[2]}" for k, v in skill.items()},
          res.diagnostics)
    weak = []
    for flux, (r, err, n) in skill.items():
        assert n >= 30 and np.isfinite(r), (site, flux)
        if r < 0.5:
            if (site, flux) not in KNOWN_WEAK:
                pytest.fail(f"{site} {flux}: daily r = {r:.2f} < 0.5 with default parameters")
            weak.append(f"{flux} r={r:.2f}: {KNOWN_WEAK[(site, flux)]}")
    if weak:
        pytest.xfail("; ".join(weak))
