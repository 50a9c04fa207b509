"""The weighted sum of every loss term (VICReg style: the sum is written out), with a named breakdown.

Every term is computed every step so it can be logged; terms with weight 0 are computed without
gradient and do not enter the total.
"""

from __future__ import annotations

import torch
from torch import nn

from nextvec.config import LossConfig
from nextvec.losses.cosine import CosineLoss
from nextvec.losses.covariance import CovarianceLoss
from nextvec.losses.infonce import InfoNCELoss
from nextvec.losses.moment import MomentLoss
from nextvec.losses.mse import MSELoss
from nextvec.losses.variance import VarianceLoss

TERMS = ("mse", "cosine", "infonce", "moment", "variance", "covariance")
HEAD_TERMS = ("energy", "flow")  # computed by a sampling head (models.heads), weighted here


class CombinedLoss(nn.Module):
    """total = mse_w * mse + cosine_w * cosine + infonce_w * infonce + moment_w * moment
             + variance_w * variance + covariance_w * covariance
             [+ energy_w * energy | + flow_w * flow]   (the sampling head's own loss, when it has one)

    Args:
        config: weights and InfoNCE settings (LossConfig).
        mean, std: (D,) train statistics of the store (store.mean, store.std).
    """

    def __init__(self, config: LossConfig, mean, std):
        super().__init__()
        self.weights = {name: float(getattr(config, name)) for name in TERMS + HEAD_TERMS}
        self.terms = nn.ModuleDict({
            "mse": MSELoss(),
            "cosine": CosineLoss(),
            "infonce": InfoNCELoss(config.temperature),
            "moment": MomentLoss(mean, std),
            "variance": VarianceLoss(std),
            "covariance": CovarianceLoss(std),
        })

    def forward(self, y_dec, y_cos, target, negatives=None, negatives_mask=None,
                head_losses: dict | None = None) -> tuple[torch.Tensor, dict]:
        """-> (total scalar tensor, {"loss": total, term: value} of detached scalars)."""
        total = y_dec.new_zeros(())
        breakdown = {}
        for name, term in self.terms.items():
            w = self.weights[name]
            with torch.set_grad_enabled(torch.is_grad_enabled() and w != 0.0):
                value = term(y_dec, y_cos, target, negatives, negatives_mask)
            if w != 0.0:
                total = total + w * value
            breakdown[name] = value.detach()
        for name, value in (head_losses or {}).items():
            total = total + self.weights[name] * value
            breakdown[name] = value.detach()
        breakdown = {"loss": total.detach(), **breakdown}
        return total, breakdown
