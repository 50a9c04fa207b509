"""Exact inner-product FAISS index over store vectors, shared by evaluation, baselines and decoding."""

from __future__ import annotations

import numpy as np

from nextvec.errors import NextvecError


class VectorIndex:
    """Exact top-k by inner product over `vectors` (N, D); row i of the index is `ids[i]`.

    For unit vectors inner product equals cosine. `kind="hnsw"` or `"ivf"` trades exactness for speed
    on banks over ~1M vectors.
    """

    def __init__(self, vectors: np.ndarray, ids: np.ndarray | None = None, kind: str = "flat", fingerprint: dict | None = None):
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise NextvecError(f"index vectors must be (N, D), got shape {vectors.shape}")
        self.dim = vectors.shape[1]
        self.ids = np.arange(len(vectors)) if ids is None else np.asarray(ids)
        self.fingerprint = fingerprint
        if kind == "flat":
            self.index = faiss.IndexFlatIP(self.dim)
        elif kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
        elif kind == "ivf":
            nlist = max(1, int(np.sqrt(len(vectors))))
            self.index = faiss.IndexIVFFlat(faiss.IndexFlatIP(self.dim), self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            self.index.train(vectors)
            self.index.nprobe = min(16, nlist)
        else:
            raise NextvecError(f"unknown index kind {kind!r}; use flat, hnsw or ivf")
        self.index.add(vectors)

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) -> scores (Q, k), ids (Q, k) (store ids, -1 where fewer than k exist)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise NextvecError(f"query vectors must be (Q, {self.dim}), got shape {queries.shape}")
        k = min(k, len(self))
        scores, rows = self.index.search(queries, k)
        ids = np.where(rows >= 0, self.ids[np.clip(rows, 0, None)], -1)
        return scores, ids


def store_index(store, split: str | None = None, kind: str = "flat") -> VectorIndex:
    """Index all chunks of a store, or of one split."""
    ids = np.arange(len(store)) if split is None else store.split_chunks(split)
    return VectorIndex(store.get(ids), ids=ids, kind=kind, fingerprint=store.fingerprint)
