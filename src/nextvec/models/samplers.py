"""Sampler baselines: predictors whose `sample` draws from a conditional distribution without training a head.

    knn_sampler     the successors of the n train chunks nearest to the last context vector, in random
                    order: real sentences, conditioned on the last sentence only
    point+gaussian  a point model's y_dec plus Gaussian noise with the covariance of its residuals
                    (target - y_dec), fitted on the val split

Both are fit on train (the memory of successors) or val (the residual covariance) only, never on test.
"""

from __future__ import annotations

import numpy as np
import torch

from nextvec.models.base import Prediction, PointSampling, predict_windows
from nextvec.models.baselines import _as_prediction as as_prediction
from nextvec.models.baselines import train_chunks_with_successor
from nextvec.vecmath import unit_rows


class KnnSuccessorSampler:
    """Sample = the successor of one of the k train chunks nearest (by cosine) to the last context vector."""

    name = "knn_sampler"

    def __init__(self, store, k: int = 8, index=None):
        from nextvec.index import store_unit_index

        self.store = store
        keys = train_chunks_with_successor(store, "knn_sampler")
        self.k = min(int(k), len(keys))
        # the successor memory's index (exact up to index.hnsw_above keys, approximate and saved above)
        self._index = store_unit_index(store, keys, "successor-keys", index, k=max(self.k, 8))

    def successor_ids(self, context: torch.Tensor, k: int) -> np.ndarray:
        """(B, k') store ids of the successors of the k' = min(k, keys) train chunks nearest the last vector."""
        last = unit_rows(context[:, -1].detach().float().cpu().numpy())
        _, ids = self._index.search(last, min(k, len(self._index)))  # (B, k') store ids of the keys
        return ids + 1

    def _successors(self, context: torch.Tensor, k: int) -> np.ndarray:
        ids = self.successor_ids(context, k)
        return np.asarray(self.store.get(ids.reshape(-1)), np.float32).reshape(*ids.shape, -1)

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        """The point: the mean of the k successors."""
        return as_prediction(torch.from_numpy(self._successors(context, self.k).mean(1)).to(context.dtype))

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor:
        """(B, n, D): the successors of the max(n, k) nearest train chunks, n drawn without replacement
        (with replacement when n > k)."""
        succ = torch.from_numpy(self._successors(context, max(n, self.k)))  # (B, k', D)
        B, k = succ.shape[:2]
        if n <= k:
            pick = torch.rand(B, k, generator=generator).argsort(1)[:, :n]
        else:
            pick = torch.randint(k, (B, n), generator=generator)
        return succ[torch.arange(B)[:, None], pick].to(context.dtype)


class PointGaussianSampler(PointSampling):
    """A point predictor's y_dec plus N(0, cov): `cov` is the covariance of its val residuals."""

    def __init__(self, point, cov: np.ndarray, name: str = "point+gaussian"):
        self.point = point
        self.name = name
        cov = np.asarray(cov, np.float64)
        jitter = 1e-6 * max(float(np.trace(cov)) / len(cov), 1e-12)
        self.chol = torch.from_numpy(np.linalg.cholesky(cov + jitter * np.eye(len(cov)))).float()  # (D, D)

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        return self.point.predict(context, mask)

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor:
        y = self.point.predict(context, mask).y_dec.float().cpu()  # (B, D)
        z = torch.randn(len(y), n, y.shape[1], generator=generator)  # (B, n, D)
        return (y[:, None] + z @ self.chol.T).to(context.dtype)


def residual_covariance(point, store, context_length: int, split: str = "val", max_windows: int = 20000,
                        seed: int = 0) -> np.ndarray:
    """Covariance (D, D) of target - y_dec of a point predictor over (a seeded subset of) a split's windows."""
    from nextvec.data.windows import select_windows

    targets, _ = select_windows(store, split, max_windows, seed)
    y_dec, _, _ = predict_windows({"point": point}, store, targets, context_length)["point"]
    r = np.asarray(store.get(targets), np.float32) - y_dec
    return np.cov(r, rowvar=False)
