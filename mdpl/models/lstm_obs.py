"""The LSTM baseline trained directly on flux-tower observations.

The "LSTM-based approach" the paper compares MdPL with: no land model, no
parameters; a sequence model maps daily forcing plus static site attributes
to daily fluxes (Qle, Qh). Static attributes are projected separately and
added to every step's input projection, so a handful of static numbers is not
swamped by (or does not swamp) the dynamic forcing. Inputs and outputs are
normalised by the caller (see :mod:`mdpl.baselines.lstm_obs`); no I/O here.
"""

from __future__ import annotations

import torch
from torch import nn


class ObsLSTM(nn.Module):
    """``(forcing[B, T, n_dynamic], static[B, n_static]) -> fluxes[B, T, n_out]`` (normalised units)."""

    def __init__(self, n_dynamic: int, n_static: int, n_out: int = 2, hidden_size: int = 32, dropout: float = 0.0):
        super().__init__()
        self.n_dynamic, self.n_static, self.n_out = n_dynamic, n_static, n_out
        self.dynamic_in = nn.Linear(n_dynamic, hidden_size)
        self.static_in = nn.Linear(n_static, hidden_size) if n_static > 0 else None
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, n_out)

    def forward(self, forcing: torch.Tensor, static: torch.Tensor | None = None) -> torch.Tensor:
        if forcing.ndim != 3 or forcing.shape[-1] != self.n_dynamic:
            raise ValueError(f"forcing must be (batch, time, {self.n_dynamic}), got {tuple(forcing.shape)}")
        h = self.dynamic_in(forcing)
        if self.static_in is not None:
            if static is None or static.shape != (forcing.shape[0], self.n_static):
                raise ValueError(f"static must be (batch, {self.n_static}), got {None if static is None else tuple(static.shape)}")
            h = h + self.static_in(static)[:, None, :]
        out, _ = self.lstm(torch.tanh(h))
        return self.head(self.dropout(out))
