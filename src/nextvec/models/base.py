"""The one contract every predictor honours, trained model or baseline.

    predict(context (B, T, D) float32, mask (B, T) bool) -> Prediction(y_dec (B, D), y_cos (B, D))

Contexts are LEFT-padded: mask[:, -1] is always True and context[:, -1] is the last real vector.
`y_dec` is the raw prediction (what a decoder wants, spread like the data); `y_cos` is unit-norm
(for cosine and retrieval).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch


class Prediction(NamedTuple):
    y_dec: torch.Tensor  # (B, D) raw
    y_cos: torch.Tensor  # (B, D) L2-normalised


@runtime_checkable
class Predictor(Protocol):
    name: str

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction: ...
