"""Default-parameter skill of the embedded land model at the real towers, per surface energy balance.

For each ``--energy-balance`` (one_source, two_source) the model runs at each site's PFT defaults
(spin-up on, float32, the compiled step where it pays), sites sharing a call where
:mod:`mdpl.ils.batching` allows. Reported per site and flux (Qle, Qh):

- daily r: Pearson r of daily means on days with >= 75 % measured steps (:func:`mdpl.data.aggregate.daily`);
- half-hourly RMSE on PLUMBER2's basis (measured steps, uncorrected fluxes, whole record) beside
  JULES GL9's (``reference/peers/JULES_GL9_metrics.csv``; its periods differ at some sites).

Run: ``python benchmarks/lsm_skill.py [--sites A B] [--energy-balance one_source two_source] [--csv OUT]``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def skill(energy_balance: str, data_dir: Path, sites=None) -> pd.DataFrame:
    from mdpl.config import LsmConfig
    from mdpl.data import load_sites
    from mdpl.data.aggregate import daily
    from mdpl.evaluate.metrics import pearson_r, rmse
    from mdpl.ils import EmbeddedLSM
    from mdpl.ils.batching import batch_groups, pad_group

    peers = data_dir / "reference" / "peers" / "JULES_GL9_metrics.csv"
    jules = pd.read_csv(peers).set_index(["site", "variable"]) if peers.exists() else None
    data = load_sites(data_dir, sites=sites)
    model = EmbeddedLSM(LsmConfig(energy_balance=energy_balance), device="cpu")
    rows = []
    for group in batch_groups(data):
        t0 = time.perf_counter()
        with torch.no_grad():
            res = model.simulate(pad_group([data[i] for i in group]), None, spinup=True)
        wall = time.perf_counter() - t0
        for col, i in enumerate(group):
            ds = data[i]
            n = ds.sizes["time"]
            obs = daily(ds)
            times = pd.DatetimeIndex(ds["time"].values)
            row = dict(site=ds.attrs["site"], energy_balance=energy_balance, group_wall_s=round(wall, 1))
            for flux in ("Qle", "Qh"):
                sim = res[flux][col, :n].double().numpy()
                row[f"{flux}_hh_rmse"] = rmse(ds[flux].values, sim, ds[f"{flux}_measured"].values.astype(bool))
                simd = pd.Series(sim, index=times).groupby(times.normalize()).mean()
                simd = simd.reindex(pd.DatetimeIndex(obs["time"].values)).values
                row[f"{flux}_daily_r"] = pearson_r(obs[flux].values, simd, obs[f"{flux}_measured"].values)
                if jules is not None and (row["site"], flux) in jules.index:
                    row[f"{flux}_jules_rmse"] = float(jules.loc[(row["site"], flux), "rmse"])
            rows.append(row)
            print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from mdpl.config import default_data_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", nargs="*", default=None)
    ap.add_argument("--energy-balance", nargs="+", default=["one_source", "two_source"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--csv", default=None, help="write the table here")
    a = ap.parse_args(argv)
    data_dir = Path(a.data_dir) if a.data_dir else default_data_dir()
    if data_dir is None:
        raise SystemExit("no real data: set --data-dir or MDPL_DATA_DIR")
    print(f"load average {os.getloadavg()}", flush=True)
    table = pd.concat([skill(eb, data_dir, a.sites) for eb in a.energy_balance], ignore_index=True)
    print(f"load average {os.getloadavg()}", flush=True)
    wide = table.pivot(index="site", columns="energy_balance",
                       values=["Qle_daily_r", "Qh_daily_r", "Qle_hh_rmse", "Qh_hh_rmse"])
    print(wide.round(3).to_string())
    for eb in a.energy_balance:
        t = table[table.energy_balance == eb]
        print(f"{eb}: daily r >= 0.6 at {(t.Qle_daily_r >= 0.6).sum()}/{len(t)} (Qle), "
              f"{(t.Qh_daily_r >= 0.6).sum()}/{len(t)} (Qh)")
    if a.csv:
        table.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
