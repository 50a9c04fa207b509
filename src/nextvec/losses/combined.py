"""The training objective: the weighted sum of every loss term, written out (VICReg style), with a named
breakdown.

Every term is computed every step so it can be logged; a term whose weight is 0 is computed without
gradient, so it adds exactly 0 to the total and nothing to the gradient.
"""

from __future__ import annotations

import torch

from nextvec.config import LossConfig
from nextvec.losses.terms import TrainStats, cosine, covariance, infonce, moment, mse, variance

TERMS = ("mse", "cosine", "infonce", "moment", "variance", "covariance")
HEAD_TERMS = ("energy", "flow")  # computed by a sampling head (models.heads), weighted here


def combined_loss(w: LossConfig, stats: TrainStats, pred, target: torch.Tensor, negatives: torch.Tensor | None = None,
                  negatives_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """The weighted sum of the terms for one batch -> (total scalar tensor, {"loss": total, term: value} of
    detached scalars, in the order of TERMS, then the sampling head's term when it has one).

    Args:
        w: the weights and InfoNCE temperature (LossConfig).
        stats: the store's train statistics (`train_stats(store.mean, store.std, device)`).
        pred: the model's Prediction: y_dec (B, D), y_cos (B, D) and the sampling head's own loss in
            head_losses ({"energy": ...} or {"flow": ...}), when it has one.
        target (B, D); negatives (B, K, D) with negatives_mask (B, K): hard negatives for InfoNCE (None in
            validation: in-batch negatives only).
    """
    def term(weight: float, fn, *args) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and weight != 0.0):
            return fn(*args)

    y_dec, y_cos = pred.y_dec, pred.y_cos
    parts = {
        "mse": term(w.mse, mse, y_dec, target),
        "cosine": term(w.cosine, cosine, y_cos, target),
        "infonce": term(w.infonce, infonce, y_cos, target, negatives, negatives_mask, w.temperature),
        "moment": term(w.moment, moment, y_dec, stats),
        "variance": term(w.variance, variance, y_dec, stats),
        "covariance": term(w.covariance, covariance, y_dec, stats),
    }
    head = pred.head_losses or {}
    total = (w.mse * parts["mse"] + w.cosine * parts["cosine"] + w.infonce * parts["infonce"]
             + w.moment * parts["moment"] + w.variance * parts["variance"] + w.covariance * parts["covariance"])
    if "energy" in head:
        total = total + w.energy * head["energy"]
    if "flow" in head:
        total = total + w.flow * head["flow"]
    parts.update(head)
    return total, {"loss": total.detach(), **{name: value.detach() for name, value in parts.items()}}
