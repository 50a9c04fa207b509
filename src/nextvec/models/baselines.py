"""Baselines: predictors that need no training, evaluated exactly like models.

Each one honours the predictor contract `predict(context (B, T, D), mask (B, T)) -> Prediction`, and
each one that needs data is fit on the TRAIN split only, so a model is never compared against a
baseline that has seen the test documents.

    mean            the global mean of the train vectors (what a collapsed model outputs)
    copy_last       the last context vector (a strong baseline: neighbouring sentences are similar)
    linear_average  the average of the real (unmasked) context vectors
    knn_successor   the train chunk that FOLLOWS the train chunk nearest to the last context vector
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nextvec.models.base import PointSampling, Prediction
from nextvec.models.common import masked_mean
from nextvec.vecmath import unit_rows


def _as_prediction(y_dec: torch.Tensor) -> Prediction:
    # y_cos is the direction of y_dec; normalize maps a zero vector to zero rather than NaN
    return Prediction(y_dec, F.normalize(y_dec, dim=-1))


class MeanBaseline(PointSampling):
    """Always the global mean of the train vectors."""

    name = "mean"

    def __init__(self, mean: np.ndarray):
        self.mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))  # (D,)

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        B = context.shape[0]
        return _as_prediction(self.mean.to(context.dtype).expand(B, -1).clone())


class CopyLastBaseline(PointSampling):
    """The last context vector (contexts are left-padded, so it is always real)."""

    name = "copy_last"

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        return _as_prediction(context[:, -1].clone())


class LinearAverageBaseline(PointSampling):
    """The average of the real context vectors (padding excluded)."""

    name = "linear_average"

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        return _as_prediction(masked_mean(context, mask))  # (B, D)


class KnnSuccessorBaseline(PointSampling):
    """Find the train chunk nearest (by cosine) to the last context vector and return its successor.

    Only train chunks that have a successor in their own document are candidates. With k > 1 the
    successors of the k nearest chunks are averaged.
    """

    name = "knn_successor"

    def __init__(self, store, k: int = 1, index=None):
        self.store = store
        self.k = int(k)
        self.index_config = index  # IndexConfig: exact up to index.hnsw_above keys, approximate above
        self._index = None

    def _build(self):
        from nextvec.index import store_unit_index

        has_next = train_chunks_with_successor(self.store, "knn_successor")
        self._index = store_unit_index(self.store, has_next, "successor-keys", self.index_config, k=max(self.k, 8))

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        if self._index is None:
            self._build()
        last = unit_rows(context[:, -1].detach().cpu().numpy().astype(np.float32))  # (B, D)
        _, ids = self._index.search(last, self.k)  # (B, k) store ids of the nearest train chunks
        succ = self.store.get((ids + 1).reshape(-1)).reshape(len(last), ids.shape[1], -1)  # (B, k, D)
        y = torch.as_tensor(succ.mean(1), dtype=context.dtype)
        return _as_prediction(y)


def train_chunks_with_successor(store, who: str) -> np.ndarray:
    """Store ids of the train chunks followed by another chunk of their document (the keys of a successor
    lookup); `who` names the caller in the error raised when there are none."""
    from nextvec.errors import NextvecError

    train = store.split_chunks("train")
    # chunk i has a successor in its document iff chunk i + 1 belongs to the same document
    keys = train[train + 1 < len(store)]
    keys = keys[store.doc_of(keys + 1) == store.doc_of(keys)]
    if len(keys) == 0:
        raise NextvecError(f"{who} needs train documents with at least 2 chunks; the train split has none")
    return keys


def build_baselines(store, knn_k: int = 1, index=None) -> dict:
    """All baselines, keyed by name, fit on the store's train split."""
    return {
        "mean": MeanBaseline(store.mean),
        "copy_last": CopyLastBaseline(),
        "linear_average": LinearAverageBaseline(),
        "knn_successor": KnnSuccessorBaseline(store, k=knn_k, index=index),
    }
