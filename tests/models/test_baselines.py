"""Baselines on toy stores whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nextvec.models.base import Predictor
from nextvec.models.baselines import build_baselines
from nextvec.store import ConceptStore, StoreWriter

FP = {"name": "test-baselines", "dim": 6, "pooling": "none", "normalized": True, "version": "0"}


def make_store(root, docs, splits):
    w = StoreWriter(root, FP, params={"source": "test"})
    w.add_shard([(f"doc{d}", [f"d{d} s{p}" for p in range(len(v))]) for d, v in enumerate(docs)],
                np.concatenate(docs).astype(np.float32), source_end=len(docs))
    w.finalize((0.6, 0.2, 0.2), 0)
    store = ConceptStore(root)
    store.doc_split = np.asarray(splits, dtype=np.int8)  # chosen splits; refit the train mean
    store.mean = store.get(store.split_chunks("train")).mean(0)
    return store


E = np.eye(6, dtype=np.float32)


@pytest.fixture
def store(tmp_path):
    # train: A = e0 e1 e2, B = e3 e4; test: C = e5 e5 e5 (chunks repeat: copy-last is perfect)
    return make_store(tmp_path / "s", [E[[0, 1, 2]], E[[3, 4]], E[[5, 5, 5]]], splits=[0, 0, 2])


def run(p, ctx, mask):
    return p.predict(torch.tensor(np.asarray(ctx), dtype=torch.float32), torch.tensor(mask))


def test_all_baselines_are_predictors(store):
    bl = build_baselines(store)
    assert list(bl) == ["mean", "copy_last", "linear_average", "knn_successor"]
    for name, p in bl.items():
        assert isinstance(p, Predictor) and p.name == name
        out = run(p, [[E[0], E[1]]], [[True, True]])
        assert out.y_dec.shape == (1, 6) and out.y_cos.shape == (1, 6)
        assert torch.linalg.norm(out.y_cos, dim=1).item() == pytest.approx(1.0)


def test_mean_is_the_train_mean_only(store):
    out = run(build_baselines(store)["mean"], [[E[5], E[5]]] * 3, [[True, True]] * 3)
    expected = E[[0, 1, 2, 3, 4]].mean(0)  # the test document (e5) is not part of it
    np.testing.assert_allclose(out.y_dec.numpy(), np.tile(expected, (3, 1)), atol=1e-6)


def test_copy_last_is_perfect_on_repeating_chunks(store):
    out = run(build_baselines(store)["copy_last"], [[E[0], E[5]], [np.zeros(6), E[5]]], [[True, True], [False, True]])
    np.testing.assert_allclose(out.y_cos.numpy(), [E[5], E[5]])


def test_linear_average_ignores_padding(store):
    ctx = [[np.full(6, 9.0), E[0], E[1]], [E[0], E[2], E[4]]]
    out = run(build_baselines(store)["linear_average"], ctx, [[False, True, True], [True, True, True]])
    np.testing.assert_allclose(out.y_dec.numpy(), [(E[0] + E[1]) / 2, (E[0] + E[2] + E[4]) / 3], atol=1e-6)


def test_knn_successor_returns_the_next_train_chunk(store):
    p = build_baselines(store)["knn_successor"]
    q = [
        0.9 * E[0] + 0.1 * E[3],   # nearest e0 -> its successor e1
        0.9 * E[2] + 0.4 * E[3],   # nearest is e2, but e2 ends its document: next best e3 -> e4
        E[5],                      # only in the test split: the answer must come from train, never e5
    ]
    out = run(p, [[x] for x in q], [[True]] * 3)
    np.testing.assert_allclose(out.y_dec.numpy()[:2], [E[1], E[4]], atol=1e-6)
    assert out.y_dec.numpy()[2, 5] == 0.0
