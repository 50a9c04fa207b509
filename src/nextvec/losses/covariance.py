"""Covariance term (VICReg, Bardes et al. 2022): sum of squared off-diagonal covariances / D, computed on
y_dec scaled by the data's per-dimension std so the term does not depend on the vectors' scale.
Constant dimensions (train std 0) are left out."""

from __future__ import annotations

import torch
from torch import nn

from nextvec.losses._stats import stat_buffers


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """Flattened off-diagonal entries of a square matrix (Barlow Twins)."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class CovarianceLoss(nn.Module):
    def __init__(self, std):
        super().__init__()
        _, std, valid = stat_buffers(torch.zeros(len(std)), std)
        self.register_buffer("std", std, persistent=False)
        self.register_buffer("valid", valid, persistent=False)

    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor, negatives=None,
                negatives_mask=None) -> torch.Tensor:
        z = (y_dec / self.std)[:, self.valid]  # (B, D')
        z = z - z.mean(0)
        cov = z.T @ z / max(z.shape[0] - 1, 1)  # (D', D')
        return off_diagonal(cov).pow(2).sum() / z.shape[1]
