"""Hand-made stores and predictors shared by the evaluation tests (imported as `evalkit`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import storekit
from nextvec.models.base import Prediction
from nextvec.store import ConceptStore, StoreWriter

FINGERPRINT = {"name": "test-eval", "dim": 8, "pooling": "none", "normalized": True, "version": "0"}


def make_store(root, docs_vectors, texts=None, splits=None, fractions=(0.6, 0.2, 0.2), seed=0):
    """A finished store from per-document (n_i, D) arrays; texts default to 'd{doc} s{pos}'.

    `splits` (one code per document: 0 train, 1 val, 2 test) overrides the random split and refits the
    train statistics, so a test can say exactly which documents are train and which are test.
    """
    dim = docs_vectors[0].shape[1]
    w = StoreWriter(root, dict(FINGERPRINT, dim=dim), params={"source": "test"})
    docs = [(f"doc{d}", texts[d] if texts else [f"d{d} s{p}" for p in range(len(v))]) for d, v in enumerate(docs_vectors)]
    w.add_shard(docs, np.concatenate(docs_vectors).astype(np.float32), source_end=len(docs))
    w.finalize(fractions, seed)
    store = ConceptStore(root)
    if splits is not None:
        store.doc_split = np.asarray(splits, dtype=np.int8)
        train = store.get(store.split_chunks("train")).astype(np.float64)
        store.mean, store.std = train.mean(0).astype(np.float32), train.std(0).astype(np.float32)
    return store


def one_hot_docs(lengths, dim=None):
    """Documents of consecutive one-hot vectors: doc 0 is e0..e(L0-1), doc 1 continues, and so on."""
    dim = dim or sum(lengths)
    eye, out, s = np.eye(dim, dtype=np.float32), [], 0
    for n in lengths:
        out.append(eye[s:s + n])
        s += n
    return out


def random_docs(n_docs=60, min_len=6, max_len=12, dim=16, seed=3):
    """Unit-norm random vectors per document (storekit's, with this suite's defaults)."""
    return storekit.random_docs(n_docs=n_docs, min_len=min_len, max_len=max_len, dim=dim, seed=seed)


class OracleNext(torch.nn.Module):
    """Finds the last context vector in the store and answers the chunk after it, plus optional noise."""

    name = "oracle"

    def __init__(self, store, noise=0.0, seed=0, context_length=None):
        super().__init__()
        self.vectors = store.get(slice(None))
        self.lookup = {v.tobytes(): i for i, v in reversed(list(enumerate(self.vectors)))}
        self.noise, self.gen = noise, torch.Generator().manual_seed(seed)
        if context_length:
            self.context_length = context_length

    def predict(self, context, mask):
        ids = [self.lookup[c.numpy().tobytes()] for c in context[:, -1]]
        y = torch.from_numpy(self.vectors[np.array(ids) + 1].copy())
        if self.noise:
            y = y + self.noise * torch.randn(y.shape, generator=self.gen)
        return Prediction(y, F.normalize(y, dim=-1))

    forward = predict


class AlwaysMean(torch.nn.Module):
    """The collapsed model: the train mean for every context."""

    name = "always_mean"

    def __init__(self, store):
        super().__init__()
        self.mean = torch.from_numpy(store.mean.copy())

    def predict(self, context, mask):
        y = self.mean.expand(len(context), -1).clone()
        return Prediction(y, F.normalize(y, dim=-1))

    forward = predict
