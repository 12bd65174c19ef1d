"""Train and evaluate the LSTM baseline on flux-tower observations.

The network (:class:`mdpl.models.lstm_obs.ObsLSTM`) maps daily forcing and
static site attributes (:class:`mdpl.data.features.SiteFeatures`) to daily
Qle and Qh. Two out-of-sample evaluations, both scored on each site's held-out
period from :func:`mdpl.data.features.split_periods` (the calibration's split):

- ``LSTM`` (held-out period): one network trained on the training periods of
  all sites; the loss never sees a test-period observation;
- ``LSTM-LOSO`` (leave one site out): for each site, a network trained on all
  other sites' whole records, predicting a site it has never seen.

Training draws random windows of ``window_days``; the first ``warmup_days``
of each window only spin the LSTM state up and are not in the loss. The loss
is the mean squared error of normalised fluxes on measured days.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mdpl.errors import DataError

FLUXES = ("Qle", "Qh")


@dataclass
class LSTMObsSettings:
    """Size and training budget of the observation LSTM (quick defaults run in seconds on one CPU core)."""

    hidden_size: int = 32
    iterations: int = 300
    batch_size: int = 8
    window_days: int = 180
    warmup_days: int = 30
    learning_rate: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0

    @classmethod
    def for_mode(cls, mode: str, seed: int = 0) -> "LSTMObsSettings":
        """``quick``: small and short; ``full``: a larger network trained longer."""
        if mode == "full":
            return cls(hidden_size=64, iterations=2000, batch_size=16, seed=seed)
        return cls(seed=seed)


@dataclass
class Normaliser:
    """Per-column mean/SD of forcing, static attributes and targets (training data only)."""

    forcing_mean: np.ndarray
    forcing_std: np.ndarray
    static_mean: np.ndarray
    static_std: np.ndarray
    target_mean: np.ndarray
    target_std: np.ndarray

    @staticmethod
    def _ms(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = np.nanmean(x, axis=0)
        s = np.nanstd(x, axis=0)
        return m.astype(np.float32), np.where(s > 1e-8, s, 1.0).astype(np.float32)

    @classmethod
    def fit(cls, features, train_masks, fluxes=FLUXES) -> "Normaliser":
        forcing = np.concatenate([f.forcing[m] for f, m in zip(features, train_masks)])
        static = np.stack([f.static for f in features])
        targets = np.concatenate(
            [np.column_stack([np.where(f.obs_mask[k] & m, f.obs[k], np.nan) for k in fluxes]) for f, m in zip(features, train_masks)]
        )
        fm, fs = cls._ms(forcing)
        sm, ss = cls._ms(static)
        tm, ts = cls._ms(targets)
        return cls(fm, fs, sm, ss, tm, ts)

    def to_dict(self) -> dict:
        return {k: v.tolist() for k, v in asdict(self).items()}


@dataclass
class TrainedObsLSTM:
    """A fitted observation LSTM with its normalisation; :meth:`predict` gives W m-2."""

    model: torch.nn.Module
    normaliser: Normaliser
    settings: LSTMObsSettings
    fluxes: tuple[str, ...] = FLUXES
    trained_on: tuple[str, ...] = ()
    losses: list[float] = field(default_factory=list)

    def predict(self, features) -> dict[str, np.ndarray]:
        """Daily fluxes (flux -> (days,) W m-2) over the whole record of one site."""
        n = self.normaliser
        x = torch.from_numpy(((features.forcing - n.forcing_mean) / n.forcing_std).astype(np.float32))[None]
        s = torch.from_numpy(((features.static - n.static_mean) / n.static_std).astype(np.float32))[None]
        self.model.eval()
        with torch.no_grad():
            y = self.model(x, s)[0].numpy()
        y = y * n.target_std + n.target_mean
        return {k: y[:, i].astype(float) for i, k in enumerate(self.fluxes)}


def _check(features) -> None:
    if not features:
        raise DataError("LSTM baseline: no sites to train on")
    names = {tuple(f.forcing_names) for f in features}
    if len(names) > 1:
        raise DataError("LSTM baseline: sites differ in forcing features; build all with mdpl.data.features.site_features")


def train_obs_lstm(
    features: Sequence,
    train_masks: Sequence[np.ndarray] | None = None,
    settings: LSTMObsSettings | None = None,
    fluxes: Sequence[str] = FLUXES,
) -> TrainedObsLSTM:
    """Fit an :class:`ObsLSTM` to the measured days inside ``train_masks`` (default: all days)."""
    from tqdm.auto import tqdm

    from mdpl.models.lstm_obs import ObsLSTM

    settings = settings or LSTMObsSettings()
    features = list(features)
    _check(features)
    if train_masks is None:
        train_masks = [np.ones(f.n_days, bool) for f in features]
    train_masks = [np.asarray(m, bool) for m in train_masks]
    fluxes = tuple(fluxes)
    norm = Normaliser.fit(features, train_masks, fluxes)

    xs, ss, ys, ms = [], [], [], []
    for f, m in zip(features, train_masks):
        xs.append(torch.from_numpy(((f.forcing - norm.forcing_mean) / norm.forcing_std).astype(np.float32)))
        ss.append(torch.from_numpy(((f.static - norm.static_mean) / norm.static_std).astype(np.float32)))
        y = np.column_stack([f.obs[k] for k in fluxes])
        ok = np.column_stack([f.obs_mask[k] & m & np.isfinite(f.obs[k]) for k in fluxes])
        ys.append(torch.from_numpy(np.nan_to_num((y - norm.target_mean) / norm.target_std).astype(np.float32)))
        ms.append(torch.from_numpy(ok))
    weight = np.array([float(m.sum()) for m in ms])
    if weight.sum() == 0:
        raise DataError(f"LSTM baseline: no measured training days at sites {', '.join(f.site for f in features)}")
    weight = weight / weight.sum()

    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    model = ObsLSTM(features[0].forcing.shape[1], features[0].static.shape[0], len(fluxes), settings.hidden_size)
    opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.iterations)
    window = min(settings.window_days, min(len(x) for x in xs))
    warm = min(settings.warmup_days, window // 4)
    losses = []
    model.train()
    for _ in tqdm(range(settings.iterations), desc="LSTM (obs)", leave=False):
        idx = rng.choice(len(xs), size=settings.batch_size, p=weight)
        starts = [int(rng.integers(0, len(xs[i]) - window + 1)) for i in idx]
        xb = torch.stack([xs[i][s : s + window] for i, s in zip(idx, starts)])
        sb = torch.stack([ss[i] for i in idx])
        yb = torch.stack([ys[i][s : s + window] for i, s in zip(idx, starts)])[:, warm:]
        mb = torch.stack([ms[i][s : s + window] for i, s in zip(idx, starts)])[:, warm:]
        if not mb.any():
            continue
        pred = model(xb, sb)[:, warm:]
        loss = ((pred - yb) ** 2)[mb].mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return TrainedObsLSTM(model, norm, settings, fluxes, tuple(f.site for f in features), losses)


@dataclass
class LSTMEvaluation:
    """Held-out daily predictions of one LSTM variant at one site."""

    site: str
    model: str  # 'LSTM' or 'LSTM-LOSO'
    days: np.ndarray
    obs: dict[str, np.ndarray]
    sim: dict[str, np.ndarray]
    day_mask: dict[str, np.ndarray]  # measured and in the held-out period
    trained_on: tuple[str, ...]


def _evaluation(f, trained: TrainedObsLSTM, name: str, test: np.ndarray) -> LSTMEvaluation:
    sim = trained.predict(f)
    return LSTMEvaluation(
        f.site,
        name,
        np.asarray(f.days),
        {k: np.asarray(f.obs[k], float) for k in trained.fluxes},
        sim,
        {k: f.obs_mask[k] & test for k in trained.fluxes},
        trained.trained_on,
    )


def evaluate_obs_lstm(
    features: Sequence,
    settings: LSTMObsSettings | None = None,
    loso: bool = True,
    fluxes: Sequence[str] = FLUXES,
) -> list[LSTMEvaluation]:
    """Both out-of-sample evaluations (held-out period; leave one site out), scored on test periods."""
    from mdpl.data.features import split_periods

    features = list(features)
    _check(features)
    splits = [split_periods(f.days) for f in features]
    out = []
    trained = train_obs_lstm(features, [tr for tr, _ in splits], settings, fluxes)
    for f, (_, te) in zip(features, splits):
        out.append(_evaluation(f, trained, "LSTM", te))
    if loso and len(features) >= 2:
        for i, f in enumerate(features):
            others = [g for j, g in enumerate(features) if j != i]
            t = train_obs_lstm(others, None, settings, fluxes)
            out.append(_evaluation(f, t, "LSTM-LOSO", splits[i][1]))
    return out


def evaluation_rows(evals: Sequence[LSTMEvaluation], pft: dict[str, str] | None = None) -> list[dict]:
    """Tidy rows (daily and monthly, ``held_out`` comparison, ``sample='out'``)."""
    from mdpl.evaluate.tables import daily_rows

    rows = []
    for e in evals:
        where = "other sites" if e.model.endswith("LOSO") else "training period of all sites"
        rows += daily_rows(
            e.site,
            (pft or {}).get(e.site, ""),
            e.days,
            e.obs,
            e.sim,
            e.model,
            "out",
            comparison="held_out",
            day_mask=e.day_mask,
            basis=f"daily means of measured days, held-out period; trained on {where}",
        )
    return rows


def rmse_of(e: LSTMEvaluation, flux: str) -> float:
    from mdpl.evaluate.metrics import rmse

    v = rmse(e.obs[flux], e.sim[flux], e.day_mask[flux])
    return v if math.isfinite(v) else math.nan
