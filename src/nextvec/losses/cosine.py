"""1 - cosine(y_cos, target), averaged over the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CosineLoss(nn.Module):
    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor, negatives=None,
                negatives_mask=None) -> torch.Tensor:
        return (1.0 - F.cosine_similarity(y_cos, target, dim=-1)).mean()
