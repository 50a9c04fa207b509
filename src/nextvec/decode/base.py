"""The decoder protocol and the checks every decoder shares.

    decode(vectors (N, D) float32, k=1) -> list (N) of lists of up to k (text, score) candidates, best first
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from nextvec.errors import NextvecError
from nextvec.vecmath import unit_rows


@runtime_checkable
class Decoder(Protocol):
    dim: int

    def decode(self, vectors: np.ndarray, k: int = 1) -> list[list[tuple[str, float]]]: ...


def check_query_vectors(vectors, dim: int, what: str = "vectors") -> np.ndarray:
    """(N, D) or (D,) array-like -> float32 (N, D); refuse a wrong dimension, NaN or inf with a clear message."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != dim:
        raise NextvecError(f"{what} must have shape (N, {dim}) to match the store, got {tuple(np.shape(vectors))}")
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise NextvecError(f"{what} contain NaN or inf (rows {np.flatnonzero(bad)[:5].tolist()})")
    return np.ascontiguousarray(v)


def round_trip_cosine(encoder, vectors, texts: list[str]) -> np.ndarray:
    """Cosine (N,) between each vector and encode(its decoded text): 1.0 means the text maps back exactly.

    Use with any decoder: `texts = [c[0][0] for c in decoder.decode(vectors)]`.
    """
    v = check_query_vectors(vectors, encoder.dim)
    if len(texts) != len(v):
        raise NextvecError(f"round_trip_cosine needs one text per vector, got {len(texts)} texts for {len(v)} vectors")
    if len(v) == 0:
        return np.zeros(0, np.float32)
    e = np.asarray(encoder.encode(list(texts)), dtype=np.float32)
    return (unit_rows(v) * unit_rows(e)).sum(axis=1)
