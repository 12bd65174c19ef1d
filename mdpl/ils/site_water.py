"""Which sites are wetlands or flooded paddies, from their attributes: the documented rule.

Rule (deterministic, overridable per site like :mod:`mdpl.ils.c4` and
:mod:`mdpl.ils.soil_texture`):

1. A site attribute ``paddy_flood_months`` (months 1-12 as ``"5-9"`` or
   ``"5,6,7,8,9"``; empty for none) makes the site an irrigated paddy: in those
   months irrigation keeps :data:`~mdpl.ils.constants.PADDY_TARGET_DEPTH_KG_M2`
   of standing water (the forcing has no irrigation, so the flooding is this
   documented option: an input the site attributes must state; it is reported
   as ``Qirrig`` and counted as an inflow in the water budget).
2. A site attribute ``wetland`` (1/0, true/false) says whether the site is a
   wetland; without it, IGBP class ``WET`` is a wetland and every other class
   is not.
3. A site attribute ``water_table_depth_m`` (m below the surface, e.g. a
   measured mean) sets the initial water table: the aquifer full up to it
   and the soil layers wholly below it saturated. Without it the water table
   starts in equilibrium with the soil (:mod:`mdpl.ils.groundwater`), at the
   surface for wetlands and paddies.
4. Wetlands and paddies have impeded drainage (baseflow ceiling
   :data:`~mdpl.ils.constants.IMPEDED_BASEFLOW_MAX_KG_M2_S` instead of
   :data:`~mdpl.ils.constants.BASEFLOW_MAX_KG_M2_S`), hold water above ground
   up to :data:`~mdpl.ils.constants.WETLAND_SPILL_KG_M2` (paddies up to their
   bunds, :data:`~mdpl.ils.constants.PADDY_BUND_KG_M2`) and start saturated with
   a full aquifer; other land holds
   :data:`~mdpl.ils.constants.DEPRESSION_STORAGE_KG_M2` in depressions.

The reader (:mod:`mdpl.data.reader`) fills the two attributes from the
package's table of documented site facts (``mdpl/data/resources/site_water.csv``,
each row with its source) when the site's own files do not carry them.
"""

from __future__ import annotations

from typing import NamedTuple

from mdpl.errors import ModelError
from mdpl.ils import constants as C

WETLAND_ATTR = "wetland"
FLOOD_ATTR = "paddy_flood_months"
WATER_TABLE_ATTR = "water_table_depth_m"
WETLAND_IGBP = "WET"


class SiteWater(NamedTuple):
    """Surface- and ground-water settings of one site."""

    wetland: bool
    flood_months: tuple[int, ...]  # months (1-12) in which a paddy is kept flooded; () for none
    spill_kg_m2: float  # standing water held before it runs off, kg m-2
    baseflow_max_kg_m2_s: float  # baseflow with the water table at the surface, kg m-2 s-1
    water_table_m: float | None = None  # initial water-table depth, m (None: the default start)

    @property
    def paddy(self) -> bool:
        return bool(self.flood_months)

    @property
    def initial_water_table_m(self) -> float | None:
        """The initial water-table depth (m): the attribute's, 0 for wetlands and paddies, else None."""
        if self.water_table_m is not None:
            return self.water_table_m
        return 0.0 if (self.wetland or self.paddy) else None


def _flag(site: str, value) -> bool:
    s = str(value).strip().lower()
    if s in ("1", "1.0", "true", "yes"):
        return True
    if s in ("0", "0.0", "false", "no", ""):
        return False
    raise ModelError(f"site {site}: attribute {WETLAND_ATTR}={value!r} must be 1/0 or true/false")


def parse_months(site: str, value) -> tuple[int, ...]:
    """Months 1-12 from ``"5-9"``, ``"5,6,7"``, ``"11-2"`` (wrapping the year end) or empty."""
    s = str(value if value is not None else "").strip()
    if not s or s.lower() in ("none", "nan"):
        return ()
    months: set[int] = set()
    try:
        for part in s.replace(";", ",").split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(float(x)) for x in part.split("-"))
                span = range(a, b + 1) if a <= b else [*range(a, 13), *range(1, b + 1)]
                months.update(span)
            elif part:
                months.add(int(float(part)))
    except ValueError:
        raise ModelError(f"site {site}: attribute {FLOOD_ATTR}={value!r} is not a list of months "
                         "(e.g. '5-9' or '5,6,7')") from None
    if not months or min(months) < 1 or max(months) > 12:
        raise ModelError(f"site {site}: attribute {FLOOD_ATTR}={value!r} must name months 1-12")
    return tuple(sorted(months))


def site_water(site: str, igbp: str, attrs: dict) -> SiteWater:
    """The rule of this module for one site."""
    attrs = attrs or {}
    months = parse_months(site, attrs.get(FLOOD_ATTR))
    if WETLAND_ATTR in attrs:
        wetland = _flag(site, attrs[WETLAND_ATTR])
    else:
        wetland = str(igbp).strip().upper() == WETLAND_IGBP
    if months:
        spill = C.PADDY_BUND_KG_M2
    elif wetland:
        spill = C.WETLAND_SPILL_KG_M2
    else:
        spill = C.DEPRESSION_STORAGE_KG_M2
    impeded = wetland or bool(months)
    base = C.IMPEDED_BASEFLOW_MAX_KG_M2_S if impeded else C.BASEFLOW_MAX_KG_M2_S
    zwt = None
    if attrs.get(WATER_TABLE_ATTR) not in (None, ""):
        try:
            zwt = float(attrs[WATER_TABLE_ATTR])
        except (TypeError, ValueError):
            raise ModelError(f"site {site}: attribute {WATER_TABLE_ATTR}={attrs[WATER_TABLE_ATTR]!r} "
                             "is not a number") from None
        if not 0.0 <= zwt <= C.AQUIFER_THICKNESS_M:
            raise ModelError(f"site {site}: attribute {WATER_TABLE_ATTR}={zwt} must lie in "
                             f"[0, {C.AQUIFER_THICKNESS_M}] m")
    return SiteWater(wetland=wetland, flood_months=months, spill_kg_m2=spill, baseflow_max_kg_m2_s=base,
                     water_table_m=zwt)
