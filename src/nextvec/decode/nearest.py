"""Retrieval decoder: a vector becomes the texts of its nearest store chunks by cosine.

Works for any encoder, and is exact: a vector that was encoded from a store chunk decodes to that
chunk's text with score 1.0. Its ceiling is the store itself: it can only say what is already there.
"""

from __future__ import annotations

import numpy as np

from nextvec.decode.base import check_query_vectors
from nextvec.vecmath import unit_rows
from nextvec.errors import NextvecError

class RetrievalDecoder:
    """Nearest chunk texts of `store` (all chunks, or one split) by cosine similarity.

    Args:
        store: a ConceptStore.
        split: None for every chunk, or "train" / "val" / "test".
        index_kind: "auto" (exact up to `index.hnsw_above` chunks, HNSW up to `index.approx_above`, IVF
            above, IVF-PQ with exact re-ranking above `index.compress_above`), "flat" (exact), "ivf", "ivfpq" or "hnsw" (approximate,
            built once and saved under STORE/indexes/; see nextvec.index).
        index: an IndexConfig (parameters of the approximate index); default IndexConfig().
    """

    def __init__(self, store, split: str | None = None, index_kind: str = "auto", index=None):
        from nextvec.config import IndexConfig
        from nextvec.index import store_unit_index

        self.store = store
        self.split = split
        self.dim = int(store.dim)
        self.fingerprint = store.fingerprint
        ids = np.arange(len(store)) if split is None else store.split_chunks(split)
        if len(ids) == 0:
            where = "" if split is None else f" in split {split!r}"
            raise NextvecError(f"the store at {store.root} has no chunks{where} to decode to")
        config = (index or IndexConfig()).model_copy(update={"kind": index_kind})
        # Cosine, not raw inner product: predictions (y_dec) are not unit-norm, and neither are GTR vectors.
        self.index = store_unit_index(store, ids, f"decoder-{split or 'all'}", config)
        self.index_kind = index_kind

    def __len__(self) -> int:
        return len(self.index)

    def search(self, vectors, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(N, D) -> cosine scores (N, k), store chunk ids (N, k) (-1 where fewer than k chunks exist)."""
        if int(k) < 1:
            raise NextvecError(f"k must be >= 1, got {k}")
        q = check_query_vectors(vectors, self.dim)
        if len(q) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return self.index.search(unit_rows(q), int(k))

    def decode(self, vectors, k: int = 1) -> list[list[tuple[str, float]]]:
        """(N, D) -> for each vector, up to k (text, cosine) pairs, best first."""
        scores, ids = self.search(vectors, k)
        return [[(self.store.text(int(i)), float(s)) for s, i in zip(srow, irow) if i >= 0]
                for srow, irow in zip(scores, ids)]
