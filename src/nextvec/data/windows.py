"""Window construction. Windows never cross documents.

Every chunk at position >= 1 of a document in the split is a target; its context is the up to T chunks
before it in the same document, LEFT-padded and masked, so context[:, -1] is always the chunk right
before the target and the early sentences of each document are predicted too.
"""

from __future__ import annotations

import numpy as np

from nextvec.errors import NextvecError


def seeded_subset(ids: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded random subset of n of `ids`, sorted; all of them (as given) when n covers them."""
    if n >= len(ids):
        return ids
    return np.sort(np.random.default_rng(seed).choice(ids, n, replace=False))


def window_targets(store, split: str) -> np.ndarray:
    """Chunk indices (M,) of every target in `split` (chunks with at least one chunk before them), in store
    order; built from document ranges, without scanning per-chunk arrays."""
    from nextvec.store.reader import concat_ranges

    docs = store.split_docs(split)
    return concat_ranges(store.doc_offsets[docs] + 1, np.diff(store.doc_offsets)[docs] - 1)


def context_indices(store, targets: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """For targets (M,) -> chunk indices (M, T) with -1 at padding, and mask (M, T) True where real."""
    targets = np.asarray(targets, dtype=np.int64)
    pos = store.pos_of(targets)  # number of chunks available before each target
    back = np.arange(T, 0, -1, dtype=np.int64)  # column j holds the chunk T - j places back
    idx = targets[:, None] - back[None, :]  # (M, T)
    mask = back[None, :] <= pos[:, None]
    return np.where(mask, idx, -1), mask


def gather_windows(store, targets: np.ndarray, T: int, vectors: np.ndarray | None = None):
    """Materialise windows: context (M, T, D) float32 (zeros at padding), mask (M, T), target (M, D).

    `vectors` may be a preloaded float32 copy of store.vectors (faster than the memmap for training).
    """
    src = store.vectors if vectors is None else vectors
    idx, mask = context_indices(store, targets, T)
    ctx = np.asarray(src[np.clip(idx, 0, None).reshape(-1)], dtype=np.float32).reshape(len(targets), T, -1)
    ctx[~mask] = 0.0
    tgt = np.asarray(src[np.asarray(targets)], dtype=np.float32)
    return ctx, mask, tgt


def select_windows(store, split: str, max_windows: int | None = None, seed: int = 0) -> tuple[np.ndarray, int]:
    """Targets of a split's windows, optionally a fixed random subset (sorted). Returns (targets, total)."""
    targets, total = window_subset(store, split, max_windows, seed)
    if total == 0:
        raise NextvecError(f"the {split} split has no windows (no document with 2 or more chunks)")
    return targets, total


def window_subset(store, split: str, n: int | None, seed: int) -> tuple[np.ndarray, int]:
    """`seeded_subset(window_targets(store, split), n, seed)` and the split's window count, without building
    the list of every window (16 MB and its temporaries per 2M windows): the subset's positions are drawn
    from the count and mapped to chunks through the documents' window counts."""
    docs = store.split_docs(split)
    per_doc = np.maximum(np.diff(store.doc_offsets)[docs] - 1, 0)  # windows per document
    total = int(per_doc.sum())
    if n is None or n >= total:
        return window_targets(store, split), total
    idx = np.sort(np.random.default_rng(seed).choice(total, int(n), replace=False))
    ends = np.cumsum(per_doc)
    d = np.searchsorted(ends, idx, side="right")  # the document holding each drawn window
    return store.doc_offsets[docs[d]] + 1 + idx - (ends[d] - per_doc[d]), total
