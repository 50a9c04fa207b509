"""The loss terms of next-vector prediction: plain functions of the tensors each one uses.

Shapes: y_dec (B, D) the raw prediction, y_cos (B, D) the unit prediction, target (B, D), negatives
(B, K, D) with negatives_mask (B, K) True = a real negative. Each term returns a scalar tensor.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# A dimension whose train std is below this is constant (MiniLM has 3 dims that are exactly 0):
# dividing by its std would give NaN or inf, so every statistic-based term leaves it out.
MIN_STD = 1e-6
NEG_INF = float("-inf")


class TrainStats(NamedTuple):
    """The store's per-dimension train statistics, as the statistic-based terms use them."""

    mean: torch.Tensor  # (D,) float32
    std: torch.Tensor  # (D,) float32, set to 1 on constant dimensions
    valid: torch.Tensor  # (D,) bool, False on constant dimensions (train std <= MIN_STD)


def train_stats(mean, std, device: torch.device | str | None = None) -> TrainStats:
    """TrainStats from array-likes (store.mean, store.std), on `device`."""
    mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
    std = torch.as_tensor(np.asarray(std, dtype=np.float32))
    valid = std > MIN_STD
    if not bool(valid.any()):
        raise ValueError("every dimension has zero train std; statistic-based losses are undefined")
    return TrainStats(mean.to(device), torch.where(valid, std, torch.ones_like(std)).to(device), valid.to(device))


def batch_std(z: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Per-dimension population std over the batch as sqrt(var + eps), so its gradient stays finite at
    zero variance (VICReg): (B, D) -> (D,). Callers pass data already divided by the train std, so eps
    is relative to each dimension's scale."""
    return torch.sqrt(z.var(0, unbiased=False) + eps)


def off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """Flattened off-diagonal entries of a square matrix (Barlow Twins)."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def mse(y_dec: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error of the raw prediction, summed over dimensions and averaged over the batch.

    Summing over dimensions keeps the scale independent of D: for unit vectors ||y - t||^2 = 2 - 2 cos."""
    return (y_dec - target).pow(2).sum(-1).mean()


def cosine(y_cos: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cosine(y_cos, target), averaged over the batch."""
    return (1.0 - F.cosine_similarity(y_cos, target, dim=-1)).mean()


def infonce(y_cos: torch.Tensor, target: torch.Tensor, negatives: torch.Tensor | None = None,
            negatives_mask: torch.Tensor | None = None, temperature: float = 0.05) -> torch.Tensor:
    """Symmetric InfoNCE on y_cos vs targets (InfoNCE, van den Oord et al. 2018; symmetric as in CLIP,
    Radford et al. 2021), with in-batch negatives plus same-document hard negatives.

    prediction -> target: row i scores its target against every other target in the batch and against
    its own K hard negatives (other chunks of the target's document). target -> prediction: column i
    scores its prediction against every other prediction. The loss is the mean of both cross-entropies.
    An in-batch target identical to the positive (a repeated sentence) is masked out, never counted as
    a negative; the data pipeline already keeps the positive out of the hard negatives.
    """
    B = y_cos.shape[0]
    t = F.normalize(target, dim=-1)
    logits = y_cos @ t.T / temperature  # (B, B): prediction i vs target j
    same = (t @ t.T > 1.0 - 1e-6) & ~torch.eye(B, dtype=torch.bool, device=t.device)  # duplicate targets
    logits = logits.masked_fill(same, NEG_INF)
    labels = torch.arange(B, device=y_cos.device)
    forward_logits = logits
    if negatives is not None and negatives.shape[1] > 0:
        hard = torch.einsum("bd,bkd->bk", y_cos, F.normalize(negatives, dim=-1)) / temperature  # (B, K)
        if negatives_mask is not None:
            hard = hard.masked_fill(~negatives_mask, NEG_INF)
        forward_logits = torch.cat([logits, hard], dim=1)  # (B, B + K)
    return 0.5 * (F.cross_entropy(forward_logits, labels) + F.cross_entropy(logits.T, labels))


def moment(y_dec: torch.Tensor, stats: TrainStats) -> torch.Tensor:
    """Moment matching: the per-dimension mean and std of y_dec over the batch should equal the store's
    train statistics. Both gaps are measured in units of the train std, so every dimension counts alike;
    constant dimensions are left out."""
    z = ((y_dec - stats.mean) / stats.std)[:, stats.valid]  # (B, D') in units of the train std
    return (z.mean(0).pow(2) + (batch_std(z) - 1.0).pow(2)).mean()


def variance(y_dec: torch.Tensor, stats: TrainStats, eps: float = 1e-4) -> torch.Tensor:
    """Variance hinge (VICReg, Bardes et al. 2022): mean over dimensions of relu(1 - std_batch / std_data),
    i.e. VICReg's relu(gamma - sqrt(var + eps)) with gamma set to the data's own std per dimension.
    Constant dimensions are left out."""
    z = (y_dec / stats.std)[:, stats.valid]  # (B, D') in units of the train std
    return F.relu(1.0 - batch_std(z, eps)).mean()


def covariance(y_dec: torch.Tensor, stats: TrainStats) -> torch.Tensor:
    """Covariance term (VICReg, Bardes et al. 2022): sum of squared off-diagonal covariances / D, computed
    on y_dec scaled by the data's per-dimension std so the term does not depend on the vectors' scale.
    Constant dimensions are left out."""
    z = (y_dec / stats.std)[:, stats.valid]  # (B, D')
    z = z - z.mean(0)
    cov = z.T @ z / max(z.shape[0] - 1, 1)  # (D', D')
    return off_diagonal(cov).pow(2).sum() / z.shape[1]
