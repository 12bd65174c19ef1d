"""Surrogate vs land model: wall time for daily fluxes of the same sites and parameter sets.

Both produce daily Qle, Qh, NEE for S sites x K parameter sets over D days,
measured side by side in one process on the same hardware:

- land model: :meth:`mdpl.ils.model.EmbeddedLSM.simulate` at the forcing's
  half-hourly step with ``daily=True`` (with and without its spin-up);
- surrogate: one forward pass of the configured multi-task (MdPL) and
  single-task (dPL) surrogates on the sites' daily features, including input
  normalisation. When no trained surrogate is given, freshly initialised
  weights of the configured size are timed: the cost of a forward pass does
  not depend on the weights' values.

Run: ``python benchmarks/bench_surrogate.py [--quick] [--no-write]`` (or ``mdpl bench surrogate``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import hardware, table, write_section  # noqa: E402

SITES = ("DK-Fou", "CN-Cng", "ES-ES2", "ZA-Kru", "ID-Pag")


def _datasets(days: int, seed: int):
    from mdpl.data.synthetic import site_twin

    # a common start so every site has the same number of steps and runs in one batch
    return [site_twin(s, years=days / 365.25, seed=seed, start="2001-01-01") for s in SITES]


def _surrogate_inputs(datasets, n_sets: int, params_unit: np.ndarray):
    import torch

    from mdpl.data.features import site_features

    feats = [site_features(ds) for ds in datasets]
    t = min(f.n_days for f in feats)
    x = np.stack([f.forcing[:t] for f in feats])
    s = np.stack([f.static for f in feats])
    doy = np.stack([f.doy[:t] for f in feats])
    return {
        "forcing": torch.from_numpy(x.astype(np.float32)),
        "static": torch.from_numpy(s.astype(np.float32)),
        "doy": torch.from_numpy(doy),
        "params_unit": torch.from_numpy(params_unit.reshape(-1, params_unit.shape[-1]).astype(np.float32)),
        "days": t,
    }


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time_surrogate(kind: str, inputs: dict, cfg, repeats: int = 3, device="cpu") -> float:
    """Median wall time (s) of normalise + forward for all S x K members (after one warm-up pass)."""
    import torch

    from mdpl.models.surrogate import build_surrogate

    x, s = inputs["forcing"].to(device), inputs["static"].to(device)
    doy, pu = inputs["doy"].to(device), inputs["params_unit"].to(device)
    hyper = {"hidden_size": cfg.surrogate.hidden_size}
    if kind == "multitask":
        hyper["n_experts"] = cfg.surrogate.n_experts
    net = build_surrogate(
        kind, n_forcing=x.shape[-1], n_params=pu.shape[-1], n_static=s.shape[-1], tasks=cfg.surrogate.tasks, **hyper,
    ).eval().to(device)
    times = []
    for i in range(repeats + 1):
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            xm, xs = x.mean((0, 1), keepdim=True), x.std((0, 1), keepdim=True) + 1e-6
            sm, ss = s.mean(0, keepdim=True), s.std(0, keepdim=True) + 1e-6
            out = net((x - xm) / xs, doy, pu, (s - sm) / ss)
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
        assert out.shape[0] == inputs["params_unit"].shape[0]
    return float(np.median(times))


def run(days: int = 60, n_sets: int = 16, seed: int = 0, threads: int = 1, device: str = "cpu") -> dict:
    """Measure both routes for 5 sites x ``n_sets`` parameter sets over ``days`` days on one device."""
    import torch

    from mdpl.config import Config
    from mdpl.ils.model import EmbeddedLSM
    from mdpl.ils.parameters import PARAMETER_SPACE as space

    torch.set_num_threads(threads)
    cfg = Config()
    datasets = _datasets(days, seed)
    rng = np.random.default_rng(seed)
    unit = rng.uniform(0.05, 0.95, size=(len(SITES), n_sets, space.n))
    phys = np.asarray(space.from_unit(unit))
    model = EmbeddedLSM(cfg.lsm, device=device)
    res = {"sites": len(SITES), "sets": n_sets, "days": days, "members": len(SITES) * n_sets, "device": device}
    with torch.no_grad():
        if torch.device(device).type == "cuda":  # warm-up: kernel loading stays out of the numbers
            model.simulate(datasets, phys, daily=True, spinup=False)
        _sync(device)
        t0 = time.perf_counter()
        out = model.simulate(datasets, phys, daily=True, spinup=False)
        _sync(device)
        res["lsm_no_spinup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.simulate(datasets, phys, daily=True, spinup=True)
        _sync(device)
        res["lsm_with_spinup_s"] = time.perf_counter() - t0
    res["lsm_days"] = int(out["Qle"].shape[1])
    inputs = _surrogate_inputs(datasets, n_sets, unit)
    res["surrogate_days"] = inputs["days"]
    res["multitask_s"] = _time_surrogate("multitask", inputs, cfg, device=device)
    res["singletask_s"] = _time_surrogate("singletask", inputs, cfg, device=device)
    res["ratio_lsm_over_multitask"] = res["lsm_no_spinup_s"] / res["multitask_s"]
    res["ratio_lsm_spinup_over_multitask"] = res["lsm_with_spinup_s"] / res["multitask_s"]
    res["ratio_lsm_over_singletask"] = res["lsm_no_spinup_s"] / res["singletask_s"]
    res["hardware"] = hardware()
    return res


def render(r: dict) -> str:
    rows = [
        {"route": "land model, half-hourly -> daily (no spin-up)", "wall s": r["lsm_no_spinup_s"],
         "per member-year ms": 1e3 * r["lsm_no_spinup_s"] / r["members"] / (r["days"] / 365.25)},
        {"route": "land model incl. spin-up", "wall s": r["lsm_with_spinup_s"],
         "per member-year ms": 1e3 * r["lsm_with_spinup_s"] / r["members"] / (r["days"] / 365.25)},
        {"route": "multi-task surrogate (MdPL)", "wall s": r["multitask_s"],
         "per member-year ms": 1e3 * r["multitask_s"] / r["members"] / (r["days"] / 365.25)},
        {"route": "single-task surrogate (dPL)", "wall s": r["singletask_s"],
         "per member-year ms": 1e3 * r["singletask_s"] / r["members"] / (r["days"] / 365.25)},
    ]
    return (
        f"Device: {r.get('device', 'cpu')}. {r['sites']} sites x {r['sets']} parameter sets = {r['members']} members, {r['days']} days of daily "
        f"Qle/Qh/NEE (synthetic twins of the five study sites; surrogate weights freshly initialised, same size "
        f"as the configured surrogate).\n\n"
        + table(rows, ["route", "wall s", "per member-year ms"])
        + f"\n\nSpeed-up of the MdPL surrogate over the land model, measured side by side: "
        f"x{r['ratio_lsm_over_multitask']:.0f} (no spin-up), x{r['ratio_lsm_spinup_over_multitask']:.0f} "
        f"(with spin-up); dPL single-task surrogate: x{r['ratio_lsm_over_singletask']:.0f}.\n"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="mdpl bench surrogate", description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=None)
    ap.add_argument("--sets", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="30 days x 8 sets (seconds to a minute)")
    ap.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: both routes run on it (default cpu)")
    a = ap.parse_args(argv)
    days = a.days or (30 if a.quick else 60)
    sets = a.sets or (8 if a.quick else 32)
    from mdpl.device import resolve_device

    r = run(days, sets, threads=a.threads, device=str(resolve_device(a.device)))
    text = render(r)
    print(f"hardware: {r['hardware']}\n{text}")
    if not a.no_write:
        cmd = "python benchmarks/bench_surrogate.py " + " ".join(argv if argv is not None else sys.argv[1:])
        title = "Surrogate vs land model" + ("" if r["device"] == "cpu" else f" ({r['device']})")
        write_section(title, text, cmd.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
