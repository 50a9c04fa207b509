"""Row-wise vector maths shared by evaluation, baselines, the index and the decoders (numpy).

Torch code normalises with `torch.nn.functional.normalize`; these are its numpy counterparts.
"""

from __future__ import annotations

import numpy as np


# rows (..., D) scaled to unit L2 norm; all-zero rows stay zero instead of becoming NaN; keeps the dtype
def unit_rows(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    v = np.asarray(v)
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


# the unit centroid (..., D) of the unit rows of x (..., N, D): the direction of a set of vectors (a topic), each
# row counted once whatever its norm; `mask` (..., N) leaves rows out
def unit_centroid(x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    u = unit_rows(np.asarray(x, np.float32))
    if mask is not None:
        u = u * np.asarray(mask, np.float32)[..., None]
    return unit_rows(u.sum(-2))


# cosine (N,) of each row of a (N, D) with the same row of b (N, D), in float32; 0 where either row is zero
def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("nd,nd->n", unit_rows(np.asarray(a, np.float32)), unit_rows(np.asarray(b, np.float32)))
