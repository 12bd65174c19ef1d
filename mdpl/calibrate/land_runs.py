"""Run the land model on calibration windows of several sites, batched, aligned to feature days.

:class:`WindowedProblem` prepares, once, everything direct and classical
calibration need: per site the forcing window, the targets on that window
(measured training days of the calibrated fluxes) and how the model's daily
output lines up with the feature days. :meth:`WindowedProblem.simulate`
then runs any parameters, the sites' windows in as few batched land-model
calls as :func:`mdpl.ils.batching.batch_groups` allows (one column per site
and set; shorter windows padded at their end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from mdpl.calibrate.inputs import train_mask_of
from mdpl.calibrate.targets import SiteTargets, site_targets, target_basis
from mdpl.calibrate.windows import best_window, window_dataset
from mdpl.ils.batching import batch_groups, pad_group


@dataclass
class SiteWindow:
    ds: object  # forcing Dataset of the window
    start: int  # first feature day of the window
    stop: int
    positions: np.ndarray  # index into the model's daily output for each window day
    targets: SiteTargets


def _slice_targets(t: SiteTargets, a: int, b: int) -> SiteTargets:
    return replace(t, obs={k: v[a:b] for k, v in t.obs.items()}, mask={k: v[a:b] for k, v in t.mask.items()})


class WindowedProblem:
    """Sites, windows and targets for optimisers that run the land model itself."""

    def __init__(self, model, datasets: Sequence, features_list: Sequence, tasks, *, window_days: int = 0,
                 train_masks: Sequence | None = None, corrected: bool = False, spinup: bool = True):
        self.model = model
        self.tasks = list(tasks)
        self.spinup = spinup
        self.sites = [str(f.site) for f in features_list]
        self.windows: list[SiteWindow] = []
        self.train_masks: list[np.ndarray] = []  # each site's training days (feature days)
        masks = train_masks or [None] * len(features_list)
        for ds, f, m in zip(datasets, features_list, masks):
            train = train_mask_of(f, m)
            self.train_masks.append(train)
            a, b = best_window(f, train, self.tasks, window_days, corrected=corrected)
            wds = window_dataset(ds, f.days, a, b) if (a, b) != (0, f.n_days) else ds
            run_days = pd.DatetimeIndex(wds["time"].values).normalize().unique()
            pos = run_days.get_indexer(f.days[a:b])
            tgt = site_targets(f, self.tasks, train, corrected=corrected)
            tgt = _slice_targets(tgt, a, b)
            ok = torch.as_tensor(pos >= 0)
            tgt.mask = {k: v & ok for k, v in tgt.mask.items()}
            self.windows.append(SiteWindow(wds, a, b, np.maximum(pos, 0), tgt))
        self.groups = batch_groups([w.ds for w in self.windows])

    @classmethod
    def from_config(cls, model, datasets: Sequence, features_list: Sequence, cfg, tasks, *, window_days: int,
                    train_masks: Sequence | None = None) -> WindowedProblem:
        """The problem a study's configuration sets: ``tasks`` on its target basis (:func:`target_basis`), each
        site's training days (given, else its default split), windows of ``window_days``."""
        return cls(model, datasets, features_list, list(tasks), window_days=window_days, train_masks=train_masks,
                   corrected=target_basis(cfg))

    @property
    def window_days(self) -> list[int]:
        return [w.stop - w.start for w in self.windows]

    @property
    def targets(self) -> list[SiteTargets]:
        return [w.targets for w in self.windows]

    def simulate(self, params: torch.Tensor) -> list[list[dict[str, torch.Tensor]]]:
        """Run ``params`` (n_sites, n_sets, P) physical; returns per site, per set, {task: (window days,)}.

        Differentiable with respect to ``params`` when gradients are enabled.
        """
        n_sites, n_sets = params.shape[0], params.shape[1]
        out: list[list[dict]] = [[] for _ in range(n_sites)]
        for idx in self.groups:
            dss = pad_group([self.windows[i].ds for i in idx])  # a no-op for windows of equal length
            res = self.model.simulate(dss if len(dss) > 1 else dss[0], params[idx], daily=True, spinup=self.spinup)
            for gi, i in enumerate(idx):
                pos = torch.as_tensor(self.windows[i].positions)
                for j in range(n_sets):
                    b = gi * n_sets + j
                    out[i].append({t: res.fluxes[t][b].index_select(0, pos.to(res.fluxes[t].device)) for t in self.tasks})
        return out

    def n_runs(self, n_sets: int = 1) -> int:
        """Site-window land-model runs per :meth:`simulate` call of ``n_sets`` sets."""
        return len(self.windows) * n_sets
