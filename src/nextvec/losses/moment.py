"""Moment matching: the per-dimension mean and std of y_dec over the batch should equal the store's
train statistics. Both gaps are measured in units of the train std, so every dimension counts alike;
constant dimensions (train std 0) are left out."""

from __future__ import annotations

import torch
from torch import nn

from nextvec.losses._stats import batch_std, stat_buffers


class MomentLoss(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        mean, std, valid = stat_buffers(mean, std)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.register_buffer("valid", valid, persistent=False)

    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor, negatives=None,
                negatives_mask=None) -> torch.Tensor:
        z = ((y_dec - self.mean) / self.std)[:, self.valid]  # (B, D') in units of the train std
        return (z.mean(0).pow(2) + (batch_std(z) - 1.0).pow(2)).mean()
