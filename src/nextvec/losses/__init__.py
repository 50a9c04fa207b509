"""Losses for next-vector prediction: plain term functions (terms.py) and their weighted sum (combined.py)."""

from nextvec.losses.combined import HEAD_TERMS, TERMS, combined_loss
from nextvec.losses.terms import (TrainStats, batch_std, cosine, covariance, infonce, moment, mse, off_diagonal,
                                  train_stats, variance)

__all__ = ["HEAD_TERMS", "TERMS", "TrainStats", "batch_std", "combined_loss", "cosine", "covariance", "infonce",
           "moment", "mse", "off_diagonal", "train_stats", "variance"]
