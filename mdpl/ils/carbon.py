"""Ecosystem respiration and NEE.

Reco = R10 * Q10 ** ((Tsoil - 283.15 K) / 10) * (0.25 + 0.75 beta), with the
root-zone water stress ``beta`` lowering respiration in dry soil.
NEE = Reco - GPP (umol m-2 s-1, positive = source to the atmosphere).
"""

from __future__ import annotations

import torch


def ecosystem_respiration(resp_base, log_q10, tsoil_k, beta):
    return resp_base * torch.exp(log_q10 * (tsoil_k - 283.15) / 10.0) * (0.25 + 0.75 * beta)
