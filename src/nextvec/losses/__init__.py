"""Losses for next-vector prediction: each is an nn.Module with
forward(y_dec, y_cos, target, negatives=None, negatives_mask=None) -> scalar; `CombinedLoss` weights them."""

from nextvec.losses.combined import HEAD_TERMS, TERMS, CombinedLoss
from nextvec.losses.cosine import CosineLoss
from nextvec.losses.covariance import CovarianceLoss, off_diagonal
from nextvec.losses.infonce import InfoNCELoss
from nextvec.losses.moment import MomentLoss
from nextvec.losses.mse import MSELoss
from nextvec.losses.variance import VarianceLoss

__all__ = ["HEAD_TERMS", "TERMS", "CombinedLoss", "CosineLoss", "CovarianceLoss", "InfoNCELoss", "MSELoss", "MomentLoss",
           "VarianceLoss", "off_diagonal"]
