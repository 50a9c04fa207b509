"""Shared test helpers: tiny deterministic stores built straight from vectors (no encoder).

Imported as `storekit` (pytest puts tests/ on sys.path, see pyproject); the fixtures live in conftest.py."""

from __future__ import annotations

import numpy as np

from nextvec.store import ConceptStore, StoreWriter

FAKE_FINGERPRINT = {"name": "test-random", "dim": 8, "pooling": "none", "normalized": True, "version": "0"}


def build_store(root, docs_vectors: list[np.ndarray], texts: list[list[str]] | None = None,
                fractions=(0.6, 0.2, 0.2), seed=0, fingerprint=None, shard_docs: int = 4) -> ConceptStore:
    """Write a finished store from per-document (n_i, D) arrays; chunk texts default to 'd{doc} s{pos}'."""
    dim = docs_vectors[0].shape[1]
    fp = dict(fingerprint or FAKE_FINGERPRINT, dim=dim)
    w = StoreWriter(root, fp, params={"source": "test"})
    for s in range(0, len(docs_vectors), shard_docs):
        block = range(s, min(s + shard_docs, len(docs_vectors)))
        docs = [(f"doc{d}", texts[d] if texts else [f"d{d} s{p}" for p in range(len(docs_vectors[d]))]) for d in block]
        w.add_shard(docs, np.concatenate([docs_vectors[d] for d in block]).astype(np.float32), source_end=block.stop)
    w.finalize(fractions, seed)
    return ConceptStore(root)


def random_docs(n_docs=20, min_len=6, max_len=14, dim=8, seed=0) -> list[np.ndarray]:
    """Unit-norm random vectors per document."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_docs):
        v = rng.normal(size=(int(rng.integers(min_len, max_len + 1)), dim)).astype(np.float32)
        out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
    return out

