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
    pos = store.chunk_pos[targets].astype(np.int64)  # number of chunks available before each target
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
    targets = window_targets(store, split)
    total = len(targets)
    if total == 0:
        raise NextvecError(f"the {split} split has no windows (no document with 2 or more chunks)")
    if max_windows is not None:
        targets = seeded_subset(targets, int(max_windows), seed)
    return targets, total
