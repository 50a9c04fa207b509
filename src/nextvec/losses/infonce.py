"""Symmetric InfoNCE on y_cos vs targets (InfoNCE, van den Oord et al. 2018; symmetric as in CLIP,
Radford et al. 2021), with in-batch negatives plus same-document hard negatives.

prediction -> target: row i scores its target against every other target in the batch and against
its own K hard negatives (other chunks of the target's document). target -> prediction: column i
scores its prediction against every other prediction. The loss is the mean of both cross-entropies.
An in-batch target identical to the positive (a repeated sentence) is masked out, never counted as
a negative; the data pipeline already keeps the positive out of the hard negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NEG_INF = float("-inf")


class InfoNCELoss(nn.Module):
    def __init__(self, temperature: float = 0.05, symmetric: bool = True):
        super().__init__()
        self.temperature, self.symmetric = temperature, symmetric

    def forward(self, y_dec: torch.Tensor, y_cos: torch.Tensor, target: torch.Tensor,
                negatives: torch.Tensor | None = None, negatives_mask: torch.Tensor | None = None) -> torch.Tensor:
        """y_cos (B, D) unit, target (B, D), negatives (B, K, D) with negatives_mask (B, K) True = real."""
        B = y_cos.shape[0]
        t = F.normalize(target, dim=-1)
        logits = y_cos @ t.T / self.temperature  # (B, B): prediction i vs target j
        same = (t @ t.T > 1.0 - 1e-6) & ~torch.eye(B, dtype=torch.bool, device=t.device)  # duplicate targets
        logits = logits.masked_fill(same, NEG_INF)
        labels = torch.arange(B, device=y_cos.device)
        forward_logits = logits
        if negatives is not None and negatives.shape[1] > 0:
            hard = torch.einsum("bd,bkd->bk", y_cos, F.normalize(negatives, dim=-1)) / self.temperature  # (B, K)
            if negatives_mask is not None:
                hard = hard.masked_fill(~negatives_mask, NEG_INF)
            forward_logits = torch.cat([logits, hard], dim=1)  # (B, B + K)
        loss = F.cross_entropy(forward_logits, labels)
        if self.symmetric:
            loss = 0.5 * (loss + F.cross_entropy(logits.T, labels))
        return loss
