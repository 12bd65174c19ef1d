"""The parameter sources a study compares, and the surrogate each surrogate route calibrates through.

``default`` is the PFT defaults (no calibration); ``mdpl`` and ``dpl`` train
a parameter generator through the multi-task and the single-task surrogate;
``direct`` and ``classical`` calibrate through the land model itself. A
surrogate route retrained with another seed carries a seeded name
(:mod:`mdpl.calibrate.seeds`).
"""

from __future__ import annotations

from mdpl.errors import ConfigError

#: every parameter source, in the order a study runs and reports them
SOURCES = ("default", "mdpl", "dpl", "direct", "classical")
#: surrogate route -> the kind of surrogate it trains its generator through
KIND_OF = {"mdpl": "multitask", "dpl": "singletask"}


def check_sources(sources) -> list[str]:
    """``sources`` without repeats, in order; an unknown name is a :class:`ConfigError` naming the allowed ones."""
    sources = list(dict.fromkeys(sources))
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise ConfigError(f"calibration.sources: unknown source(s) {', '.join(bad)}; allowed: {', '.join(SOURCES)}")
    return sources
