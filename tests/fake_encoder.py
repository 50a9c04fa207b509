"""Tiny deterministic stand-ins for a real encoder (decode, generate and serve tests).

Import as `from fake_encoder import HashEncoder` (pytest puts tests/ on sys.path for its conftest).
"""

from __future__ import annotations

import re
import zlib

import numpy as np


class HashEncoder:
    """Each word maps to a fixed random unit vector (seeded by its crc32); a text is the normalised sum.

    Texts sharing words get similar vectors, identical texts identical ones: enough to check plumbing.
    """

    def __init__(self, dim: int = 16, name: str = "test-hash"):
        self.dim = dim
        self.name = name
        self.calls: list[list[str]] = []

    def _word(self, w: str) -> np.ndarray:
        return np.random.default_rng(zlib.crc32(w.encode())).normal(size=self.dim).astype(np.float32)

    def encode(self, texts, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i] += self._word(w)
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out

    def fingerprint(self) -> dict:
        return {"name": self.name, "dim": self.dim, "pooling": "word-hash", "normalized": True, "version": "0"}


class OneHotEncoder(HashEncoder):
    """'e3' (any text containing the token e3) -> the 3rd unit vector: hand-checkable rollouts."""

    def encode(self, texts, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            out[i, int(re.search(r"e(\d+)", t).group(1))] = 1.0
        return out

    def fingerprint(self) -> dict:
        return {"name": "test-onehot", "dim": self.dim, "pooling": "none", "normalized": True, "version": "0"}
