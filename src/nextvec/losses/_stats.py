"""Helpers shared by the losses that compare predictions with the store's train statistics."""

from __future__ import annotations

import numpy as np
import torch

# A dimension whose train std is below this is constant (MiniLM has 3 dims that are exactly 0):
# dividing by its std would give NaN or inf, so every statistic-based loss leaves it out.
MIN_STD = 1e-6


def stat_buffers(mean, std) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, std, valid) float32/bool tensors from array-likes; std is set to 1 on invalid dims."""
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    std = torch.as_tensor(np.asarray(std, dtype=np.float32))
    valid = std > MIN_STD
    if not bool(valid.any()):
        raise ValueError("every dimension has zero train std; statistic-based losses are undefined")
    return mean, torch.where(valid, std, torch.ones_like(std)), valid


def batch_std(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Per-dimension population std over the batch as sqrt(var + eps), so its gradient stays finite at
    zero variance (VICReg): (B, D) -> (D,). Callers pass data already divided by the train std, so eps
    is relative to each dimension's scale."""
    return torch.sqrt(z.var(0, unbiased=False) + eps)
