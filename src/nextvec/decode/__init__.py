"""Vectors -> text. Every decoder has one call:

    decode(vectors (N, D) float32, k=1) -> list (N) of lists of up to k (text, score) candidates, best first

    RetrievalDecoder (nearest.py)   nearest chunk texts of a store by cosine (FAISS); any encoder
    Vec2TextDecoder (vec2text.py)   vec2text's gtr-base corrector; GTR vec2text stores only (extra nextvec[vec2text])

`round_trip_cosine(encoder, vectors, texts)` measures how well decoded texts land back on their vectors.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from nextvec.errors import NextvecError


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


def unit_rows(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation; all-zero rows stay zero instead of becoming NaN."""
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(n, eps)


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


def round_trip(decoder, encoder, vectors) -> dict:
    """Decode top-1, re-encode, and summarise the round-trip cosine (mean, p50, min) with the texts."""
    texts = [cands[0][0] if cands else "" for cands in decoder.decode(vectors, k=1)]
    cos = round_trip_cosine(encoder, vectors, texts)
    return {
        "round_trip_cosine": float(cos.mean()) if len(cos) else float("nan"),
        "p50": float(np.median(cos)) if len(cos) else float("nan"),
        "min": float(cos.min()) if len(cos) else float("nan"),
        "per_vector": cos.tolist(),
        "texts": texts,
    }


def __getattr__(name):  # lazy: importing nextvec.decode stays cheap (faiss, torch load on use)
    if name == "RetrievalDecoder":
        from nextvec.decode.nearest import RetrievalDecoder

        return RetrievalDecoder
    if name == "Vec2TextDecoder":
        from nextvec.decode.vec2text import Vec2TextDecoder

        return Vec2TextDecoder
    raise AttributeError(name)


__all__ = ["Decoder", "RetrievalDecoder", "Vec2TextDecoder", "check_query_vectors", "round_trip", "round_trip_cosine",
           "unit_rows"]
