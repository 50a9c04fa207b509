"""Variance hinge (VICReg, Bardes et al. 2022): mean over dimensions of relu(1 - std_batch / std_data),
i.e. VICReg's relu(gamma - sqrt(var + eps)) with gamma set to the data's own std per dimension.
Constant dimensions (train std 0) are left out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nextvec.losses._stats import batch_std, stat_buffers


class VarianceLoss(nn.Module):
    def __init__(self, std, eps: float = 1e-4):
        super().__init__()
        _, std, valid = stat_buffers(torch.zeros(len(std)), std)
        self.register_buffer("std", std, persistent=False)
        self.register_buffer("valid", valid, persistent=False)
        self.eps = eps

    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor, negatives=None,
                negatives_mask=None) -> torch.Tensor:
        z = (y_dec / self.std)[:, self.valid]  # (B, D') in units of the train std
        return F.relu(1.0 - batch_std(z, self.eps)).mean()
