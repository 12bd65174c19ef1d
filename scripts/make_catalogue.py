"""Write the package's site catalogue ``mdpl/data/resources/plumber2_sites.csv``.

The catalogue holds public facts about the 170 PLUMBER2 sites (Ukkola et al.
2022, ESSD 14:449): code, name, country, IGBP class, latitude, longitude,
elevation and period. This script reads the reference table shipped beside
the flux-tower files, checks and normalises it, adds the PFT group and
writes the committed package file. Re-run it when the reference changes::

    python scripts/make_catalogue.py [--source ../shared/data/reference/plumber2_sites.csv]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "reference" / "plumber2_sites.csv"
TARGET = ROOT / "mdpl" / "data" / "resources" / "plumber2_sites.csv"

COLUMNS = ["site", "site_name", "country", "igbp", "lat", "lon", "elevation", "period", "years"]


def build(source: Path) -> pd.DataFrame:
    """Read, validate and normalise the reference table."""
    sys.path.insert(0, str(ROOT))
    from mdpl.data.catalogue import pft_group

    df = pd.read_csv(source)
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SystemExit(f"{source}: missing column(s) {missing}")
    df = df[COLUMNS].copy()
    df["site"] = df["site"].str.strip()
    df["igbp"] = df["igbp"].str.strip().str.upper()
    if df["site"].duplicated().any():
        raise SystemExit(f"{source}: duplicate site codes {df.loc[df['site'].duplicated(), 'site'].tolist()}")
    if not (df["lat"].between(-90, 90).all() and df["lon"].between(-180, 180).all()):
        raise SystemExit(f"{source}: latitude/longitude out of range")
    years = df["period"].str.extract(r"^(\d{4})-(\d{4})$").astype(int)
    df["start_year"], df["end_year"] = years[0], years[1]
    if ((df["end_year"] - df["start_year"] + 1) != df["years"].astype(int)).any():
        raise SystemExit(f"{source}: 'years' disagrees with 'period'")
    df["years"] = df["years"].astype(int)
    df["pft_group"] = df["igbp"].map(pft_group)
    df = df.rename(columns={"lat": "latitude", "lon": "longitude", "elevation": "elevation_m"})
    return df.sort_values("site").reset_index(drop=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    p.add_argument("--target", type=Path, default=TARGET)
    args = p.parse_args(argv)
    df = build(args.source)
    args.target.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.target, index=False)
    print(f"wrote {len(df)} sites to {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
