"""Daily model inputs of one site: forcing, day of year, static attributes, observations.

:func:`site_features` turns one canonical Dataset (:mod:`mdpl.data.schema`)
into a :class:`SiteFeatures`: daily means of the forcing (plus the daily
maximum and minimum air temperature and the vapour-pressure deficit, which a
daily mean alone hides), static site attributes with a one-hot PFT group, and
the observed daily fluxes with a measured-day mask (a day counts as measured
when at least ``min_measured_fraction`` of its steps were, CalLMIP style).
This is what the surrogates, the parameter generator and the baselines eat.

:func:`split_periods` fixes the calibration/evaluation split of a site.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from mdpl.data.catalogue import PFT_GROUPS, pft_group
from mdpl.errors import DataError
from mdpl.thermo import saturation_vapour_pressure_pa, vapour_pressure_pa

#: daily forcing features, in order, with units
FORCING_UNITS: dict[str, str] = {
    "SWdown": "W m-2",
    "LWdown": "W m-2",
    "Tair": "K",
    "Tair_max": "K",
    "Tair_min": "K",
    "Qair": "kg kg-1",
    "VPD": "Pa",
    "Psurf": "Pa",
    "Wind": "m s-1",
    "Precip": "mm d-1",
    "CO2air": "ppm",
    "LAI": "m2 m-2",
}
FORCING_FEATURES: tuple[str, ...] = tuple(FORCING_UNITS)

#: PFT groups of the one-hot encoding (anything else falls into 'other')
PFT_GROUP_NAMES: tuple[str, ...] = tuple(sorted(set(PFT_GROUPS.values()))) + ("other",)

#: static site attributes, in order, with units
STATIC_UNITS: dict[str, str] = {
    "latitude": "degrees_north",
    "abs_latitude": "degrees",
    "elevation_m": "m",
    "reference_height_m": "m",
    "canopy_height_m": "m",
    "tair_mean_k": "K",
    "precip_mm_yr": "mm yr-1",
    "swdown_mean_w_m2": "W m-2",
    **{f"pft_{g}": "1" for g in PFT_GROUP_NAMES},
}
STATIC_FEATURES: tuple[str, ...] = tuple(STATIC_UNITS)

#: observed fluxes carried along (daily means; W m-2 or umol m-2 s-1)
OBS_FLUXES: tuple[str, ...] = ("Qle", "Qh", "NEE", "Qle_cor", "Qh_cor", "Rnet", "Qg")

DAY_S = 86400.0


@dataclass
class SiteFeatures:
    """Daily inputs and observations of one site (all arrays share the ``days`` axis)."""

    site: str
    igbp: str
    pft_group: str
    days: pd.DatetimeIndex
    forcing: np.ndarray  # (days, F) float32, columns FORCING_FEATURES
    doy: np.ndarray  # (days,) int, 1..366
    static: np.ndarray  # (S,) float32, entries STATIC_FEATURES
    obs: dict[str, np.ndarray]  # flux -> (days,) daily mean, NaN where no data
    obs_mask: dict[str, np.ndarray]  # flux -> (days,) bool, day measured
    forcing_names: tuple[str, ...] = FORCING_FEATURES
    static_names: tuple[str, ...] = STATIC_FEATURES
    attrs: dict = field(default_factory=dict)

    @property
    def n_days(self) -> int:
        return len(self.days)

    def forcing_var(self, name: str) -> np.ndarray:
        """One forcing column by name (units in :data:`FORCING_UNITS`)."""
        return self.forcing[:, self.forcing_names.index(name)]

    def static_var(self, name: str) -> float:
        return float(self.static[self.static_names.index(name)])

    def to_dataset(self) -> xr.Dataset:
        """A netCDF-ready Dataset (dims ``day``, ``forcing_feature``, ``static_feature``)."""
        ds = xr.Dataset(
            {
                "forcing": (("day", "forcing_feature"), self.forcing.astype(np.float32)),
                "doy": ("day", self.doy.astype(np.int16)),
                "static": ("static_feature", self.static.astype(np.float32)),
            },
            coords={
                "day": ("day", self.days.values),
                "forcing_feature": list(self.forcing_names),
                "static_feature": list(self.static_names),
            },
        )
        for k in self.obs:
            ds[f"obs_{k}"] = ("day", self.obs[k].astype(np.float32))
            ds[f"obs_{k}_measured"] = ("day", self.obs_mask[k].astype(np.int8))
        ds.attrs.update({k: v for k, v in self.attrs.items() if isinstance(v, (str, int, float))})
        ds.attrs.update(site=self.site, igbp=self.igbp, pft_group=self.pft_group)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> SiteFeatures:
        """Inverse of :meth:`to_dataset`."""
        obs, mask = {}, {}
        for v in ds.data_vars:
            if v.startswith("obs_") and not v.endswith("_measured"):
                k = v[4:]
                obs[k] = ds[v].values.astype(np.float32)
                mask[k] = ds[f"{v}_measured"].values.astype(bool)
        attrs = dict(ds.attrs)
        return cls(
            site=str(attrs.pop("site")),
            igbp=str(attrs.pop("igbp")),
            pft_group=str(attrs.pop("pft_group")),
            days=pd.DatetimeIndex(ds["day"].values),
            forcing=ds["forcing"].values.astype(np.float32),
            doy=ds["doy"].values.astype(int),
            static=ds["static"].values.astype(np.float32),
            obs=obs,
            obs_mask=mask,
            forcing_names=tuple(str(x) for x in ds["forcing_feature"].values),
            static_names=tuple(str(x) for x in ds["static_feature"].values),
            attrs=attrs,
        )


def _vpd_pa(tair_k, qair, psurf_pa) -> np.ndarray:
    """Vapour pressure deficit (Pa), never negative."""
    e = vapour_pressure_pa(qair, psurf_pa)
    return np.maximum(saturation_vapour_pressure_pa(np.asarray(tair_k, dtype=float)) - e, 0.0)


def _daily_frame(ds: xr.Dataset) -> pd.DataFrame:
    """Sub-daily forcing (with VPD and total precipitation added) as a time-indexed frame."""
    need = ("SWdown", "LWdown", "Tair", "Qair", "Psurf", "Wind", "Rainf", "CO2air", "LAI")
    missing = [v for v in need if v not in ds]
    if missing:
        raise DataError(f"site {ds.attrs.get('site', '?')}: forcing lacks {', '.join(missing)} (see mdpl.data.schema)")
    t = pd.DatetimeIndex(ds["time"].values)
    cols = {v: np.asarray(ds[v].values, dtype=np.float64) for v in need}
    snow = np.asarray(ds["Snowf"].values, dtype=np.float64) if "Snowf" in ds else 0.0
    cols["Precip"] = (cols.pop("Rainf") + snow) * DAY_S  # kg m-2 s-1 -> mm d-1 (daily mean rate)
    cols["VPD"] = _vpd_pa(cols["Tair"], cols["Qair"], cols["Psurf"])
    return pd.DataFrame(cols, index=t)


def site_features(ds: xr.Dataset, min_measured_fraction: float = 0.75) -> SiteFeatures:
    """Daily :class:`SiteFeatures` of one canonical site Dataset.

    Days are calendar days of the file's time stamps (which label the start
    of each step). Only whole days are kept: a day needs all its steps
    (``86400 / time_step_s``), so a file that starts or ends mid-day loses
    the partial day. Observed fluxes and their masks come from
    :func:`mdpl.data.aggregate.daily`: a day counts (``obs_mask`` True, value
    the mean of its steps) when at least ``min_measured_fraction`` of its
    steps were measured; other days are NaN.
    """
    site = str(ds.attrs.get("site", "?"))
    step_s = float(ds.attrs.get("time_step_s", 0) or 0)
    if step_s <= 0:
        raise DataError(f"site {site}: attrs['time_step_s'] missing or not positive")
    per_day = int(round(DAY_S / step_s))
    frame = _daily_frame(ds)
    day_of_step = frame.index.floor("D")
    counts = pd.Series(1, index=frame.index).groupby(day_of_step).sum()
    whole = counts.index[counts.values == per_day]
    if len(whole) == 0:
        raise DataError(f"site {site}: no complete day in the forcing ({len(frame)} steps of {step_s:g} s)")
    grouped = frame.groupby(day_of_step)
    mean = grouped.mean().loc[whole]
    mean["Tair_max"] = grouped["Tair"].max().loc[whole]
    mean["Tair_min"] = grouped["Tair"].min().loc[whole]
    forcing = mean[list(FORCING_FEATURES)].to_numpy(dtype=np.float32)
    if not np.all(np.isfinite(forcing)):
        bad = [FORCING_FEATURES[j] for j in np.where(~np.all(np.isfinite(forcing), axis=0))[0]]
        raise DataError(f"site {site}: daily forcing has missing values in {', '.join(bad)}")
    days = pd.DatetimeIndex(whole)

    from mdpl.data.aggregate import daily  # the project's one definition of a measured day

    agg = daily(ds[[v for v in OBS_FLUXES + tuple(f"{k}_measured" for k in OBS_FLUXES) if v in ds]].assign_attrs(ds.attrs),
                min_measured_fraction)
    agg_days = pd.DatetimeIndex(agg["time"].values)
    obs, obs_mask = {}, {}
    for k in OBS_FLUXES:
        if k in agg:
            obs[k] = agg[k].to_series().set_axis(agg_days).reindex(days).to_numpy(np.float32)
            obs_mask[k] = agg[f"{k}_measured"].to_series().set_axis(agg_days).reindex(days, fill_value=False).to_numpy(bool)
            obs_mask[k] = obs_mask[k] & np.isfinite(obs[k])
        else:
            obs[k] = np.full(len(days), np.nan, np.float32)
            obs_mask[k] = np.zeros(len(days), bool)

    igbp = str(ds.attrs.get("igbp", "")).upper()
    group = str(ds.attrs.get("pft_group") or pft_group(igbp))
    onehot = {f"pft_{g}": 0.0 for g in PFT_GROUP_NAMES}
    onehot[f"pft_{group}" if group in PFT_GROUP_NAMES else "pft_other"] = 1.0
    lat = float(ds.attrs.get("latitude", np.nan))
    stat = {
        "latitude": lat,
        "abs_latitude": abs(lat),
        "elevation_m": float(ds.attrs.get("elevation_m", np.nan)),
        "reference_height_m": float(ds.attrs.get("reference_height_m", np.nan)),
        "canopy_height_m": float(ds.attrs.get("canopy_height_m", np.nan)),
        "tair_mean_k": float(mean["Tair"].mean()),
        "precip_mm_yr": float(mean["Precip"].mean() * 365.25),
        "swdown_mean_w_m2": float(mean["SWdown"].mean()),
        **onehot,
    }
    static = np.array([stat[k] for k in STATIC_FEATURES], dtype=np.float32)
    if not np.all(np.isfinite(static)):
        bad = [k for k, v in zip(STATIC_FEATURES, static) if not np.isfinite(v)]
        raise DataError(f"site {site}: site attribute(s) {', '.join(bad)} missing (see mdpl.data.schema.SITE_ATTRS)")
    attrs = {k: ds.attrs[k] for k in ("source", "longitude", "time_step_s") if k in ds.attrs}
    attrs["min_measured_fraction"] = float(min_measured_fraction)
    return SiteFeatures(
        site=site,
        igbp=igbp,
        pft_group=group,
        days=days,
        forcing=forcing,
        doy=days.day_of_year.to_numpy().astype(int),
        static=static,
        obs=obs,
        obs_mask=obs_mask,
        attrs=attrs,
    )


def split_periods(
    days, *, min_year_days: int = 300, block_days: int = 28, every: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic calibration/evaluation split: ``(train_mask, test_mask)`` over ``days``.

    Where the site has two or more calendar years with at least
    ``min_year_days`` days each, the last such year (and anything after it)
    is held out. Otherwise consecutive ``block_days``-day blocks are counted
    from the first day and every ``every``-th block (the 4th, 8th, ...) is
    held out, so all seasons appear in both parts.
    """
    d = pd.DatetimeIndex(days)
    if len(d) == 0:
        raise DataError("split_periods: no days given")
    years = pd.Series(1, index=d.year).groupby(level=0).sum()
    full = sorted(y for y, n in years.items() if n >= min_year_days)
    if len(full) >= 2:
        test = np.asarray(d.year >= full[-1])
    else:
        block = (np.asarray((d - d[0]).days) // block_days).astype(int)
        test = (block % every) == (every - 1)
    return ~test, test
