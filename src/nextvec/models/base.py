"""The one contract every predictor honours, trained model or baseline.

    predict(context (B, T, D) float32, mask (B, T) bool) -> Prediction(y_dec (B, D), y_cos (B, D))

Contexts are LEFT-padded: mask[:, -1] is always True and context[:, -1] is the last real vector.
`y_dec` is the raw prediction (what a decoder wants, spread like the data); `y_cos` is unit-norm
(for cosine and retrieval).

    sample(context, mask, n, generator) -> (B, n, D)

draws n next vectors from the predictor's conditional distribution; a point predictor returns its
`y_dec` n times (`PointSampling`).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch


class Prediction(NamedTuple):
    y_dec: torch.Tensor  # (B, D) raw
    y_cos: torch.Tensor  # (B, D) L2-normalised
    head_losses: dict | None = None  # a sampling head's training losses, when forward() was given the target


@runtime_checkable
class Predictor(Protocol):
    name: str

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction: ...

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor: ...


def sample_from(predictor, context: torch.Tensor, mask: torch.Tensor, n: int,
                generator: torch.Generator | None = None, **options) -> torch.Tensor:
    """n draws (B, n, D) from any predictor: its `sample` when it has one, else its y_dec repeated. `options`
    (temperature, guidance, steps; None = the predictor's default) matter to sampling heads only."""
    if not hasattr(predictor, "sample"):
        return PointSampling.sample(predictor, context, mask, n, generator)
    return predictor.sample(context, mask, n, generator, **{k: v for k, v in options.items() if v is not None})


class PointSampling:
    """`sample` for a point predictor: its point `y_dec`, n times (B, n, D); sampling options are ignored."""

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor:
        y = self.predict(context, mask).y_dec
        return y[:, None].expand(-1, n, -1).clone()
