"""The design's towers: five catalogue towers per PFT group, their station climates, and their synthetic forcing.

:data:`DESIGN_SITES` names the towers, :data:`DESIGN_CLIMATES` gives each a
rough station climatology for the weather generator
(:class:`mdpl.data.synthetic.Climate`), and :func:`design_sites` turns them
into forcing-only canonical Datasets. These are per-tower data, not logic.
"""

from __future__ import annotations

from mdpl.errors import ConfigError

#: towers per PFT group in the design
TOWERS_PER_GROUP = 5

#: the design: five catalogue towers per PFT group, spanning each group's climates (boreal to tropical, humid to
#: semi-arid). ``per_group < 5`` takes the first ones of each group.
DESIGN_SITES: dict[str, tuple[str, ...]] = {
    "evergreen_forest": ("FI-Hyy", "ID-Pag", "FR-Pue", "NL-Loo", "AU-Tum"),
    "woodland": ("ZA-Kru", "US-Ton", "AU-How", "ES-LMa", "US-SRM"),
    "cultivation": ("DK-Fou", "ES-ES2", "US-Ne1", "IT-BCi", "FR-Gri"),
    "grassland": ("CN-Cng", "AU-DaP", "IT-Amp", "US-Var", "HU-Bug"),
}

#: rough station climatologies of the design towers (rounded; for the weather generator's
#: :class:`mdpl.data.synthetic.Climate`), beside the five of ``SITE_CLIMATES``
DESIGN_CLIMATES: dict[str, dict] = {
    # boreal Scots pine, southern Finland
    "FI-Hyy": dict(tair_mean_k=276.7, tair_seasonal_amp_k=11.0, tair_diurnal_amp_k=4.5, tair_synoptic_sd_k=3.5,
                   rh_mean=0.80, precip_mm_yr=710.0, wet_day_fraction=0.45, precip_seasonality=0.2,
                   precip_peak_doy=220.0, cloud_dry_mean=0.6, wind_mean_m_s=2.5),
    # Mediterranean holm oak, southern France
    "FR-Pue": dict(tair_mean_k=286.6, tair_seasonal_amp_k=8.5, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.65, precip_mm_yr=910.0, wet_day_fraction=0.22, precip_seasonality=0.5,
                   precip_peak_doy=290.0, cloud_dry_mean=0.4, wind_mean_m_s=2.5),
    # maritime Scots pine, the Netherlands
    "NL-Loo": dict(tair_mean_k=283.0, tair_seasonal_amp_k=7.0, tair_diurnal_amp_k=5.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.82, precip_mm_yr=790.0, wet_day_fraction=0.5, precip_seasonality=0.15,
                   precip_peak_doy=300.0, cloud_dry_mean=0.6, wind_mean_m_s=3.5),
    # cool-temperate eucalypt forest, 1200 m, SE Australia (winter rain)
    "AU-Tum": dict(tair_mean_k=282.7, tair_seasonal_amp_k=6.5, tair_diurnal_amp_k=6.5, tair_synoptic_sd_k=2.5,
                   rh_mean=0.70, precip_mm_yr=1000.0, wet_day_fraction=0.4, precip_seasonality=0.2,
                   precip_peak_doy=200.0, cloud_dry_mean=0.5, wind_mean_m_s=2.5),
    # Mediterranean oak savanna, California (winter rain, dry summer)
    "US-Ton": dict(tair_mean_k=288.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.55, precip_mm_yr=560.0, wet_day_fraction=0.18, precip_seasonality=0.9,
                   precip_peak_doy=15.0, cloud_dry_mean=0.3, wind_mean_m_s=2.0),
    # tropical savanna, Northern Territory (monsoon Dec-Mar)
    "AU-How": dict(tair_mean_k=300.2, tair_seasonal_amp_k=2.0, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=0.8,
                   warmest_doy=320.0, rh_mean=0.70, precip_mm_yr=1700.0, wet_day_fraction=0.35,
                   precip_seasonality=0.95, precip_peak_doy=30.0, cloud_dry_mean=0.4, wind_mean_m_s=2.5),
    # dehesa (tree-grass savanna), western Spain
    "ES-LMa": dict(tair_mean_k=289.4, tair_seasonal_amp_k=9.0, tair_diurnal_amp_k=8.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.60, precip_mm_yr=530.0, wet_day_fraction=0.2, precip_seasonality=0.6,
                   precip_peak_doy=330.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # semi-arid mesquite savanna, Arizona (summer monsoon)
    "US-SRM": dict(tair_mean_k=292.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.35, precip_mm_yr=380.0, wet_day_fraction=0.12, precip_seasonality=0.6,
                   precip_peak_doy=210.0, cloud_dry_mean=0.25, wind_mean_m_s=3.0),
    # maize-soybean, Nebraska (continental)
    "US-Ne1": dict(tair_mean_k=283.2, tair_seasonal_amp_k=13.5, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=3.5,
                   rh_mean=0.68, precip_mm_yr=790.0, wet_day_fraction=0.28, precip_seasonality=0.5,
                   precip_peak_doy=170.0, cloud_dry_mean=0.4, wind_mean_m_s=4.0),
    # irrigated maize, southern Italy
    "IT-BCi": dict(tair_mean_k=291.0, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=6.5, tair_synoptic_sd_k=1.8,
                   rh_mean=0.70, precip_mm_yr=500.0, wet_day_fraction=0.2, precip_seasonality=0.6,
                   precip_peak_doy=330.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # wheat-maize rotation near Paris
    "FR-Gri": dict(tair_mean_k=284.1, tair_seasonal_amp_k=7.5, tair_diurnal_amp_k=6.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.78, precip_mm_yr=650.0, wet_day_fraction=0.45, precip_seasonality=0.1,
                   precip_peak_doy=300.0, cloud_dry_mean=0.55, wind_mean_m_s=3.5),
    # tropical pasture, Northern Territory (monsoon)
    "AU-DaP": dict(tair_mean_k=300.1, tair_seasonal_amp_k=3.0, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=1.0,
                   warmest_doy=320.0, rh_mean=0.60, precip_mm_yr=1250.0, wet_day_fraction=0.3,
                   precip_seasonality=0.95, precip_peak_doy=30.0, cloud_dry_mean=0.35, wind_mean_m_s=2.5),
    # mountain grassland, 990 m, central Italy
    "IT-Amp": dict(tair_mean_k=283.1, tair_seasonal_amp_k=8.5, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=2.5,
                   rh_mean=0.72, precip_mm_yr=1100.0, wet_day_fraction=0.3, precip_seasonality=0.5,
                   precip_peak_doy=320.0, cloud_dry_mean=0.45, wind_mean_m_s=2.5),
    # annual grassland, California (winter rain)
    "US-Var": dict(tair_mean_k=288.9, tair_seasonal_amp_k=8.0, tair_diurnal_amp_k=9.0, tair_synoptic_sd_k=2.0,
                   rh_mean=0.55, precip_mm_yr=560.0, wet_day_fraction=0.18, precip_seasonality=0.9,
                   precip_peak_doy=15.0, cloud_dry_mean=0.3, wind_mean_m_s=2.5),
    # sandy semi-arid grassland, Hungarian plain
    "HU-Bug": dict(tair_mean_k=283.9, tair_seasonal_amp_k=11.0, tair_diurnal_amp_k=7.0, tair_synoptic_sd_k=3.0,
                   rh_mean=0.70, precip_mm_yr=560.0, wet_day_fraction=0.3, precip_seasonality=0.3,
                   precip_peak_doy=170.0, cloud_dry_mean=0.45, wind_mean_m_s=2.5),
}


def design_site_codes(per_group: int = TOWERS_PER_GROUP, groups: tuple[str, ...] | None = None) -> list[str]:
    """The design's towers, group by group (``per_group`` of each, at most :data:`TOWERS_PER_GROUP`)."""
    if not 1 <= int(per_group) <= TOWERS_PER_GROUP:
        raise ConfigError(f"design: per_group must lie in 1..{TOWERS_PER_GROUP} (the design has {TOWERS_PER_GROUP} "
                          f"towers per PFT group), got {per_group}")
    groups = tuple(groups or DESIGN_SITES)
    bad = [g for g in groups if g not in DESIGN_SITES]
    if bad:
        raise ConfigError(f"design: unknown PFT group(s) {', '.join(bad)}; known: {', '.join(DESIGN_SITES)}")
    return [s for g in groups for s in DESIGN_SITES[g][: int(per_group)]]


def design_sites(per_group: int = TOWERS_PER_GROUP, *, groups: tuple[str, ...] | None = None, years: float = 1.0,
                 seed: int = 0, time_step_s: int = 1800) -> list:
    """Synthetic twins (canonical Datasets, forcing only) of the design's towers, with their design climates."""
    from mdpl.data.catalogue import site_info
    from mdpl.data.synthetic import SITE_CLIMATES, SITE_UTC_OFFSET_H, Climate, generate_site

    out = []
    for code in design_site_codes(per_group, groups):
        info = site_info(code)
        over = DESIGN_CLIMATES.get(code) or SITE_CLIMATES.get(code, {})
        clim = Climate.from_latitude(info["latitude"], info["elevation_m"], **over)
        out.append(generate_site(code, latitude=info["latitude"], longitude=info["longitude"],
                                 elevation_m=info["elevation_m"], igbp=info["igbp"],
                                 start=f"{info['start_year']}-01-01", years=years, time_step_s=time_step_s,
                                 seed=seed, climate=clim, site_name=f"{info['site_name']} (design twin)",
                                 utc_offset_h=SITE_UTC_OFFSET_H.get(code)))
    return out
