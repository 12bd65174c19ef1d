"""Ensemble store: round trip, provenance, resume after interruption, nothing half-written read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from mdpl.data.features import site_features
from mdpl.data.synthetic import site_twin
from mdpl.ensemble import EnsembleStore, run_ensemble, sample_parameters, site_seed
from mdpl.ensemble.toy import ToyBucketModel, toy_space
from mdpl.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parent.parent
SITES = ["DK-Fou", "CN-Cng", "ES-ES2"]  # DK-Fou and ES-ES2 share their step count: one group


def _sites():
    """Three short synthetic sites; CN-Cng is longer, so it runs apart from the other two."""
    return [site_twin(s, years=0.15 if s == "CN-Cng" else 0.1, seed=1) for s in SITES]


@pytest.fixture(scope="module")
def sites():
    return _sites()


@pytest.fixture(scope="module")
def reference(sites, tmp_path_factory):
    d = tmp_path_factory.mktemp("ens") / "ref"
    model = ToyBucketModel()
    store = run_ensemble(sites, model, toy_space(), 6, d, batch_size=4, seed=7, progress=False)
    return store, model


def test_round_trip_matches_direct_runs(sites, reference):
    store, model = reference
    assert store.sites == SITES and store.n_members == 6
    assert store.params.shape == (3, 6, 4)
    assert model.calls == 4  # 2 batches x 2 site groups
    space = toy_space()
    for i, (ds, s) in enumerate(zip(sites, SITES)):
        theta = sample_parameters(space, 6, "sobol", site_seed(7, s))
        np.testing.assert_allclose(store.params[i], theta)
        direct = ToyBucketModel().simulate(ds, theta)
        for flux in ("Qle", "Qh", "NEE"):
            np.testing.assert_allclose(store.member_series(s, flux), direct.fluxes[flux], rtol=1e-5, atol=1e-4)
        f = site_features(ds)
        assert store.features[s].days.equals(f.days)
        np.testing.assert_array_equal(store.features[s].forcing, f.forcing)
    assert store.done.all()


def test_manifest_provenance(reference):
    store, _ = reference
    man = json.loads((store.path / "manifest.json").read_text())
    assert man["model"]["name"] == "toy-bucket" and man["model"]["version"] == "1"
    assert man["seed"] == 7 and man["sampler"] == "sobol" and man["mdpl_version"]
    assert [s["site"] for s in man["sites"]] == SITES
    assert man["sites"][0]["start"].startswith("2005-01-01")
    assert [p["name"] for p in man["parameters"]] == toy_space().names
    assert store.space.names == toy_space().names
    np.testing.assert_allclose(store.space.upper, toy_space().upper)


class _Interrupt(Exception):
    pass


class _FailingModel(ToyBucketModel):
    def __init__(self, fail_at):
        super().__init__()
        self.fail_at = fail_at

    def simulate(self, forcing, params, daily=True):
        if self.calls + 1 == self.fail_at:
            self.calls += 1
            raise _Interrupt("interrupted")
        return super().simulate(forcing, params, daily)


def test_resume_after_interruption(sites, reference, tmp_path):
    ref, _ = reference
    d = tmp_path / "ens"
    with pytest.raises(_Interrupt):
        run_ensemble(sites, _FailingModel(fail_at=3), toy_space(), 6, d, batch_size=4, seed=7, progress=False)
    with pytest.raises(DataError, match="incomplete"):
        EnsembleStore.open(d)
    part = EnsembleStore.open(d, allow_incomplete=True)
    assert 0 < part.done.sum() < part.done.size
    assert np.all(np.isnan(part.params[~part.done]))
    # a half-written temporary from a killed writer is never read and gets cleaned up
    junk = d / "runs" / ".CN-Cng__b0001.nc.abc123.tmp"
    junk.write_bytes(b"\x89HDF\r\n garbage")
    model = ToyBucketModel()
    store = run_ensemble(sites, model, toy_space(), 6, d, batch_size=4, seed=7, progress=False)
    assert model.calls == 2  # only the batches that were missing
    assert not junk.exists()
    for flux in ("Qle", "Qh", "NEE"):
        np.testing.assert_array_equal(store.daily[flux], ref.daily[flux])
    np.testing.assert_array_equal(store.params, ref.params)


def test_refuses_different_settings(sites, reference):
    ref, _ = reference
    with pytest.raises(ConfigError, match="different settings.*seed"):
        run_ensemble(sites, ToyBucketModel(), toy_space(), 6, ref.path, batch_size=4, seed=8, progress=False)


def test_open_errors(tmp_path):
    with pytest.raises(DataError, match="not an ensemble store"):
        EnsembleStore.open(tmp_path)


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import xarray as xr

    from mdpl.data.synthetic import site_twin
    from mdpl.ensemble import run_ensemble
    from mdpl.ensemble.toy import ToyBucketModel, toy_space

    ready = Path(sys.argv[2])
    real_to_netcdf = xr.Dataset.to_netcdf
    written = []

    def to_netcdf(self, path, *args, **kwargs):
        # the third batch file is cut to half its bytes, as by a kill mid-write; then wait to be killed
        out = real_to_netcdf(self, path, *args, **kwargs)
        path = Path(path)
        if path.parent.name == "runs":
            written.append(path)
            if len(written) == 3:
                data = path.read_bytes()
                path.write_bytes(data[: len(data) // 2])
                ready.with_suffix(".tmp").write_text(str(path))
                os.replace(ready.with_suffix(".tmp"), ready)
                while True:
                    time.sleep(1)
        return out

    xr.Dataset.to_netcdf = to_netcdf
    sites = [site_twin(s, years=0.15 if s == "CN-Cng" else 0.1, seed=1) for s in %r]
    run_ensemble(sites, ToyBucketModel(), toy_space(), 6, sys.argv[1], batch_size=2, seed=7, progress=False,
                 group_sites=False)
    """
) % (SITES,)
#: how long the child may take to reach its third batch file: a hung child, not a slow one (no pace is assumed)
_KILL_TIMEOUT_S = 900


def test_killed_run_leaves_only_complete_files(sites, reference, tmp_path):
    """A run killed while it writes its third batch file leaves the two finished ones and no file under a
    final name that cannot be read; resuming computes exactly the rest.

    The child stops in the middle of that write (half its bytes on disk) and tells the parent by a file, so
    the kill lands mid-write on every machine, however loaded: no clock decides how far the run got. A store
    that wrote in place would leave the half file under its final name, and this test fails.
    """
    ref, _ = reference
    d = tmp_path / "killed"
    ready = tmp_path / "writing_batch_3"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT, str(d), str(ready)], env=env, cwd=REPO)
    try:
        deadline = time.monotonic() + _KILL_TIMEOUT_S
        while not ready.is_file():
            assert proc.poll() is None, f"the ensemble run ended (status {proc.returncode}) before it was killed"
            assert time.monotonic() < deadline, f"no third batch file after {_KILL_TIMEOUT_S} s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    half = Path(ready.read_text())
    assert half.is_file(), "the half-written batch file is gone"
    finished = sorted((d / "runs").glob("*.nc"))
    assert half not in finished, f"{half.name}: a half-written file under its final name"
    assert len(finished) == 2, [p.name for p in finished]
    part = EnsembleStore.open(d, allow_incomplete=True)  # every file under its final name is readable
    assert part.done.sum() == 2 * 2  # two batches of two members
    with pytest.raises(DataError, match="incomplete"):
        EnsembleStore.open(d)
    model = ToyBucketModel()
    store = run_ensemble(sites, model, toy_space(), 6, d, batch_size=2, seed=7, progress=False, group_sites=False)
    assert model.calls == 9 - len(finished)
    assert not half.exists(), "the half-written temporary was not cleaned up"
    for flux in ("Qle", "Qh", "NEE"):
        np.testing.assert_allclose(store.daily[flux], ref.daily[flux], rtol=1e-6)


def test_training_span_drops_the_heldout_year():
    from mdpl.ensemble.runner import training_span

    two = site_twin("CN-Cng", years=1.9, seed=0, start="2008-01-01")
    span = training_span(two)
    days = np.unique(span["time"].values.astype("datetime64[D]"))
    assert str(days[0]) == "2008-01-01" and str(days[-1]) == "2008-12-31"
    one = site_twin("DK-Fou", years=1, seed=0)
    assert training_span(one).sizes["time"] == one.sizes["time"]  # week blocks: the whole record


def test_sites_of_different_lengths_share_one_call(tmp_path):
    """Records of different lengths (a leap day, a longer record) run in one call, padded; each site's series
    are exactly those it gets alone, over all of its own days."""
    from mdpl.ils.batching import batch_groups

    a = site_twin("DK-Fou", years=1, seed=1, start="2005-01-01")
    b = site_twin("CN-Cng", years=1.2, seed=1, start="2008-01-01")  # 2008 is a leap year; 73 days longer
    assert batch_groups([a, b]) == [[0, 1]] and batch_groups([a, b], max_pad_days=30) == [[0], [1]]
    model = ToyBucketModel()
    store = run_ensemble([a, b], model, toy_space(), 3, tmp_path / "e", batch_size=3, progress=False)
    assert model.calls == 1
    assert store.n_days.tolist() == [site_features(a).n_days, site_features(b).n_days]
    for i, (code, ds) in enumerate(zip(["DK-Fou", "CN-Cng"], [a, b])):
        alone = ToyBucketModel().simulate(ds, store.params[i])
        np.testing.assert_allclose(store.member_series(code, "Qle"), alone.fluxes["Qle"], rtol=1e-5, atol=1e-4)


def test_given_parameter_sets_run_as_given_and_join_an_existing_store(sites, reference, tmp_path):
    """Refinement runs: explicit (site, member, P) sets are stored as given, and `concat` appends them as members."""
    reference = reference[0]
    space = toy_space()
    rng = np.random.default_rng(3)
    thetas = np.asarray(space.from_unit(rng.uniform(0.2, 0.8, (len(sites), 3, space.n))))
    extra = run_ensemble(sites, ToyBucketModel(), space, 3, tmp_path / "extra", progress=False, thetas=thetas)
    np.testing.assert_allclose(extra.params, thetas)
    assert extra.manifest["sampler"] == "given"
    # the same sets run one at a time give the same daily fluxes
    one = ToyBucketModel().simulate(sites[0], thetas[0, 1:2], daily=True)
    np.testing.assert_allclose(extra.daily["Qle"][0, 1, : extra.n_days[0]], np.asarray(one.fluxes["Qle"])[0], rtol=1e-5)
    joined = reference.concat(extra)
    assert joined.n_members == reference.n_members + 3 and joined.params.shape[1] == reference.n_members + 3
    np.testing.assert_array_equal(joined.daily["Qh"][:, reference.n_members:], extra.daily["Qh"])
    assert joined.finite().shape == (len(sites), reference.n_members + 3)
    with pytest.raises(ConfigError, match="thetas must have shape"):
        run_ensemble(sites, ToyBucketModel(), space, 3, tmp_path / "bad", progress=False, thetas=thetas[:, :2])
    other = run_ensemble(sites[:1], ToyBucketModel(), space, 2, tmp_path / "other", progress=False)
    with pytest.raises(DataError, match="cannot join"):
        reference.concat(other)
