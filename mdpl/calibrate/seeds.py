"""Surrogate routes retrained with more seeds (``calibration.seeds``): their names, settings and records.

With ``calibration.seeds = n > 1`` every surrogate route (MdPL, dPL) is
trained ``n - 1`` more times on the same ensemble, surrogate and generator
both with seed ``seed + k``; the run is named ``f"{route}{SEED_SEP}{k}"``
(``mdpl_seed1``, ...). The headline stays seed ``seed`` (k = 0);
``evaluation/seeds.json`` holds every seed's records and parameters, so the
spread over seeds of the skill and of the parameters can be shown.
"""

from __future__ import annotations

import copy

from mdpl.calibrate.sources import KIND_OF

#: a surrogate route retrained with another seed is named f"{route}{SEED_SEP}{k}"
SEED_SEP = "_seed"


def route_of(name: str) -> str:
    """The route ('mdpl', 'dpl', ...) of a calibration name, seeded or not."""
    return name.split(SEED_SEP)[0]


def seeded_name(route: str, k: int) -> str:
    """The name of ``route`` retrained with seed offset ``k`` (k >= 1)."""
    return f"{route}{SEED_SEP}{int(k)}"


def seed_offset(name: str) -> int:
    """k of a seeded name (0 for the headline run)."""
    return int(name.split(SEED_SEP)[1]) if SEED_SEP in name else 0


def extra_seeds(cfg) -> range:
    """The seed offsets k = 1 .. seeds - 1 of the extra runs (empty for one seed)."""
    return range(1, max(1, int(getattr(cfg.calibration, "seeds", 1))))


def seeded_config(cfg, k: int):
    """A copy of ``cfg`` whose seed is ``cfg.seed + k``."""
    out = copy.deepcopy(cfg)
    out.seed = int(cfg.seed) + int(k)
    return out


def seed_table(base_seed: int, records: list[dict], seeded_records: list[dict], calibrations: dict,
               seeded: dict) -> dict:
    """The content of ``evaluation/seeds.json``: the surrogate routes' records and parameters for every seed.

    ``records``/``calibrations``: the headline run (seed ``base_seed``; its
    ``default`` records come along as the baseline); ``seeded_records``/
    ``seeded``: the extra runs under their seeded names. Rows carry the route
    as ``source`` and the seed as ``seed``.
    """
    base_seed = int(base_seed)
    rows = [{**r, "seed": base_seed} for r in records if r["source"] in KIND_OF or r["source"] == "default"]
    for r in seeded_records:
        name = r["source"]
        if name == "default":
            continue
        rows.append({**r, "source": route_of(name), "seed": base_seed + seed_offset(name)})
    params = []
    for name, res in {**{k: v for k, v in calibrations.items() if k in KIND_OF}, **seeded}.items():
        seed = base_seed + seed_offset(name)
        params += [{"site": s, "source": route_of(name), "seed": seed, **dict(zip(res.param_names, map(float, p)))}
                   for s, p in zip(res.sites, res.params)]
    return {"records": rows, "parameters": params}
