"""A dependency-free bag-of-words feature-hashing encoder (`--encoder hash[:DIM]`).

Not a semantic model: it exists for smoke tests, CI and crash tests of the pipeline, where loading a
transformer for every subprocess would dominate the run time. Deterministic across processes (crc32).
"""

from __future__ import annotations

import re
import zlib

import numpy as np

from nextvec.vecmath import unit_rows

_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    def __init__(self, dim: int = 64):
        if not 2 <= dim <= 65536:
            raise ValueError(f"hash encoder dimension must be in [2, 65536], got {dim}")
        self.dim = dim

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                h = zlib.crc32(w.encode("utf-8"))
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        return unit_rows(out)

    def fingerprint(self) -> dict:
        return {"name": f"hash-bow-{self.dim}", "dim": self.dim, "pooling": "bag-of-words", "normalized": True,
                "version": "nextvec hashing 1"}
