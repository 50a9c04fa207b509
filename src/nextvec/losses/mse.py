"""Squared error of the raw prediction, summed over dimensions and averaged over the batch.

Summing over dimensions keeps the scale independent of D: for unit vectors ||y - t||^2 = 2 - 2 cos.
"""

from __future__ import annotations

import torch
from torch import nn


class MSELoss(nn.Module):
    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor, negatives=None,
                negatives_mask=None) -> torch.Tensor:
        return (y_dec - target).pow(2).sum(-1).mean()
