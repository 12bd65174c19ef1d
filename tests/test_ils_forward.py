"""The embedded land model's forward pass: shapes, finiteness, physical ranges, batching, errors."""

import numpy as np
import pytest
import torch

from mdpl.data.synthetic import site_twin
from mdpl.errors import ModelError
from mdpl.ils import EmbeddedLSM, LandModel, get_model
from mdpl.ils.forcing import forcing_from_datasets
from mdpl.ils.parameters import PARAMETER_SPACE as SPACE


@pytest.fixture(scope="module")
def two_sites():
    # same start, same length: one temperate crop, one tropical forest
    return [site_twin(c, years=3 / 365.25, start="2005-06-10") for c in ("DK-Fou", "ID-Pag")]


@pytest.fixture(scope="module")
def model():
    return EmbeddedLSM(device="cpu")


@pytest.fixture(scope="module")
def run(model, two_sites):
    p = np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))])
    return model.simulate(two_sites, p, spinup=False)


def test_model_satisfies_the_protocol(model):
    assert isinstance(model, LandModel)
    assert model.device == torch.device("cpu") and model.dtype == torch.float32
    assert isinstance(get_model("embedded", device="cpu"), EmbeddedLSM)
    with pytest.raises(ModelError, match="bogus"):
        get_model("bogus")


def test_shapes_time_and_units(run, two_sites):
    n = two_sites[0].sizes["time"]
    assert run.sites == ["DK-Fou", "ID-Pag"] and run.n_sets == 2 and run.batch == 4
    assert list(run.time) == list(two_sites[0].indexes["time"])
    for k in ("Qle", "Qh", "Rnet", "Qg", "NEE", "GPP", "TVeg", "ESoil", "ECanop", "Qs", "Qsb", "RootMoist",
              "Tsurf", "SWE", "energy_residual", "energy_closure"):
        assert run[k].shape == (4, n), k
        assert torch.isfinite(run[k]).all(), k
    assert run["SoilMoist"].shape == (4, n, 4) and run["SoilTemp"].shape == (4, n, 4)
    ds = run.to_dataset()
    assert ds["Qle"].dims == ("site", "member", "time") and ds["Qle"].attrs["units"] == "W m-2"
    assert ds["SoilMoist"].dims == ("site", "member", "time", "soil_layer")
    assert ds["NEE"].attrs["units"] == "umol m-2 s-1"


def test_fluxes_obey_their_physical_laws(run, two_sites):
    """Signs and sums the physics fixes, not loose ranges: each line fails if a flux is mis-wired."""
    from mdpl.ils import constants as C

    ta = torch.as_tensor(np.stack([d["Tair"].values for d in two_sites])).repeat_interleave(2, 0).float()
    dts = run["Tsurf"] - ta
    warm, cold = dts > 0.05, dts < -0.05
    # sensible heat runs down the surface-air temperature gradient
    assert (run["Qh"][warm] > 0).all() and (run["Qh"][cold] < 0).all()
    # the ground heat flux runs down the gradient from the surface to the first soil node (at step start)
    dtg = run["Tsurf"][:, 1:] - run["SoilTemp"][:, :-1, 0]
    assert (run["Qg"][:, 1:][dtg > 0.05] > 0).all() and (run["Qg"][:, 1:][dtg < -0.05] < 0).all()
    # latent heat is the latent heat of the water that left
    lv = (C.LATENT_VAPORISATION * (run["TVeg"] + run["ESoil"] + run["ECanop"] + run["EWater"])
          + C.LATENT_SUBLIMATION * run["SubSnow"])
    torch.testing.assert_close(run["Qle"], lv, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(run["NEE"], run["Reco"] - run["GPP"])
    assert run["TVeg"].min() >= -1e-12, run["TVeg"].min()  # no negative transpiration
    night = torch.as_tensor(~(two_sites[0]["SWdown"].values > 0))
    assert run["GPP"].min() >= 0 and run["GPP"][:, night].abs().max() < 1e-4  # no photosynthesis in the dark
    # a sunny midday: most of the net radiation goes into evaporation and sensible heat, little into the ground
    day = torch.as_tensor(two_sites[0]["SWdown"].values > 400)
    assert run["Rnet"][:, day].mean() > 300
    share = (run["Qle"] + run["Qh"])[:, day].mean(1) / run["Rnet"][:, day].mean(1)
    assert (share > 0.7).all() and (share < 1.05).all(), share
    theta = run["SoilMoist"] / (torch.tensor(C.SOIL_DZ_M) * C.RHO_WATER)
    porosity = torch.tensor(run.diagnostics["soil_theta_sat"])[:, None, None]
    assert theta.min() >= C.THETA_RES - 1e-6 and (theta <= porosity + 1e-5).all()
    assert run["SWE"].min() >= -1e-6 and run["CanopInt"].min() >= -1e-6
    assert run["energy_residual"].abs().max() < 0.5


def test_daily_means(model, run, two_sites):
    d = run.daily()
    assert d.is_daily and d["Qle"].shape == (4, 3) and len(d.time) == 3
    torch.testing.assert_close(d["Qle"][:, 2], run["Qle"][:, 96:144].mean(1))
    # the run's initial soil temperature is the mean air temperature of its first year: same forcing
    again = model.simulate(two_sites, np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))]),
                           spinup=False, daily=True)
    torch.testing.assert_close(again["Qh"], d["Qh"], rtol=1e-5, atol=1e-4)
    assert list(again.time) == list(d.time)


def test_batch_equals_one_by_one(model, two_sites, run):
    sets = np.stack([SPACE.defaults("CRO"), SPACE.from_unit(np.full(SPACE.n, 0.3))])
    short = [d.isel(time=slice(0, 96)) for d in two_sites]
    batch = model.simulate(short, sets, spinup=False)
    for s in range(2):
        for j in range(2):
            one = model.simulate(short[s], sets[j], spinup=False)
            for k in ("Qle", "Qh", "NEE", "RootMoist", "Tsurf"):
                torch.testing.assert_close(batch[k][2 * s + j], one[k][0], rtol=1e-5, atol=1e-4)


def test_parameter_shapes_broadcast_the_same(model, two_sites):
    short = [d.isel(time=slice(0, 12)) for d in two_sites]
    p = SPACE.defaults("GRA")
    a = model.simulate(short, p, spinup=False)["Qle"]
    b = model.simulate(short, p[None], spinup=False)["Qle"]
    c = model.simulate(short, np.stack([p[None], p[None]]), spinup=False)["Qle"]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)
    defaults = model.simulate(short, None, spinup=False)  # per-site IGBP defaults
    torch.testing.assert_close(defaults["Qle"][0], model.simulate(short[0], SPACE.defaults("CRO"),
                                                                   spinup=False)["Qle"][0])


def test_user_errors_name_the_culprit(model, two_sites):
    short = [d.isel(time=slice(0, 12)) for d in two_sites]
    bad = SPACE.defaults("CRO")
    bad[SPACE.index("bb_slope")] = 50.0
    with pytest.raises(ModelError, match="bb_slope"):
        model.simulate(short, bad, spinup=False)
    with pytest.raises(ModelError, match="last dimension"):
        model.simulate(short, np.ones(3), spinup=False)
    with pytest.raises(ModelError, match="3 sites"):
        model.simulate(short, np.ones((3, 1, SPACE.n)), spinup=False)
    broken = short[0].copy()
    broken["Tair"] = broken["Tair"].copy()
    broken["Tair"][3] = np.nan
    with pytest.raises(ModelError, match="DK-Fou.*Tair"):
        model.simulate(broken, None, spinup=False)
    celsius = short[0].copy()
    celsius["Tair"] = celsius["Tair"] - 273.15
    with pytest.raises(ModelError, match="Tair.*units"):
        model.simulate(celsius, None, spinup=False)
    other = short[1].copy()
    other.attrs["igbp"] = "XYZ"
    with pytest.raises(ModelError, match="ID-Pag.*XYZ"):
        model.simulate(other, None, spinup=False)
    with pytest.raises(ModelError, match="time steps"):
        model.simulate([short[0], two_sites[1].isel(time=slice(0, 20))], None, spinup=False)


def test_spinup_stops_on_its_tolerance_reports_a_true_drift_and_detaches(two_sites):
    """A dry day repeated has no steady soil water: spin-up runs to its cap and says so; a looser tolerance
    stops it after one cycle; the reported drift is the soil-water change of one more cycle."""
    from mdpl.config import LsmConfig

    short = [d.isel(time=slice(0, 48)) for d in two_sites]
    p = torch.tensor(SPACE.defaults("CRO"), dtype=torch.float32, requires_grad=True)
    r = EmbeddedLSM(LsmConfig(spinup_max_years=4, spinup_tolerance=1e-3), device="cpu").simulate(short, p)
    info = r.diagnostics
    assert info["spinup_cycles"] == 4 and info["spinup_final_drift"] > 1e-3
    # the run after spin-up is one more cycle of the same record: its relative soil-water change is the drift
    soil0 = r.initial_stores_mm["soil"]
    end = r["SoilMoist"][:, -1].sum(-1)
    rel = ((end - soil0) / soil0).abs().detach()
    assert float(rel.max()) == pytest.approx(info["spinup_final_drift"], rel=0.05)
    loose = EmbeddedLSM(LsmConfig(spinup_max_years=4, spinup_tolerance=1e-2), device="cpu").simulate(
        short, p.detach())
    assert loose.diagnostics["spinup_cycles"] == 1 and loose.diagnostics["spinup_final_drift"] < 1e-2
    cold = EmbeddedLSM(device="cpu").simulate(short, p.detach(), spinup=False)
    assert (r["RootMoist"][:, 0] < cold["RootMoist"][:, 0] - 1.0).all()  # spin-up dried the soil (kg m-2)
    assert r.initial_storage_mm is not None and not r.initial_storage_mm.requires_grad
    r["Qle"].sum().backward()  # gradients still flow through the run itself
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_float64_and_forcing_tensors(two_sites):
    m = EmbeddedLSM(device="cpu", dtype=torch.float64)
    f = forcing_from_datasets([d.isel(time=slice(0, 24)) for d in two_sites], dtype=torch.float64)
    r = m.simulate(f, SPACE.defaults("CRO"), spinup=False)
    assert r["Qle"].dtype == torch.float64 and r["Qle"].shape == (2, 24)


def test_extreme_parameter_sets_stay_finite(model, two_sites):
    # cube corners: every parameter at a bound, in 32 patterns (plus all-low, all-high)
    bits = (np.arange(32)[:, None] >> (np.arange(SPACE.n)[None, :] % 5)) & 1
    u = np.concatenate([bits.astype(float), np.zeros((1, SPACE.n)), np.ones((1, SPACE.n))])
    with torch.no_grad():
        r = model.simulate([d.isel(time=slice(0, 96)) for d in two_sites], SPACE.from_unit(u), spinup=False)
    for k in ("Qle", "Qh", "NEE", "Tsurf", "RootMoist"):
        assert torch.isfinite(r[k]).all(), k
    assert r["energy_residual"].abs().max() < 0.5


def test_spinup_of_a_column_does_not_depend_on_its_batch(two_sites):
    """Each column stops spinning up on its own convergence: a site run beside another (which needs more
    cycles) gets exactly the state and fluxes it gets alone."""
    from mdpl.config import LsmConfig

    # tolerance between the two columns' per-cycle drifts (about 9e-3 and 3e-3): one stops, one runs on
    m = EmbeddedLSM(LsmConfig(spinup_max_years=6, spinup_tolerance=3e-3, dtype="float64"), device="cpu")
    short = [d.isel(time=slice(0, 96)) for d in two_sites]
    p = np.stack([SPACE.defaults("CRO"), SPACE.defaults("EBF")])
    together = m.simulate(short, p[:, None, :], spinup=True, daily=True)
    alone = [m.simulate(ds, p[i], spinup=True, daily=True) for i, ds in enumerate(short)]
    cycles = [a.diagnostics["spinup_cycles"] for a in alone]
    assert cycles[0] != cycles[1] and together.diagnostics["spinup_cycles"] == max(cycles), cycles
    for i, a in enumerate(alone):
        for flux in ("Qle", "Qh", "NEE", "RootMoist"):
            torch.testing.assert_close(together[flux][i], a[flux][0], rtol=1e-9, atol=1e-9)
