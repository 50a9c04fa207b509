"""Metrics on one-hot banks, where every rank can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evalkit import OracleNext, make_store, one_hot_docs, random_docs
from nextvec.evaluate.metrics import evaluate_predictor, in_document_ranks
from nextvec.scoring import Bank, retrieval_ranks
from nextvec.models.baselines import CopyLastBaseline


@pytest.fixture
def onehot(tmp_path):
    # doc 0 = e0..e3 (train), doc 1 = e4..e7 (test), doc 2 = e8..e11 (test); 12-d
    return make_store(tmp_path / "s", one_hot_docs([4, 4, 4]), splits=[0, 2, 2])


def e(i, dim=12):
    v = np.zeros(dim, np.float32)
    v[i] = 1
    return v


def test_global_ranks_by_hand(onehot):
    bank = Bank.for_split(onehot, "test")  # chunks 4..11
    assert len(bank) == 8
    queries = np.stack([
        e(5),                                # exactly the target 5: rank 1
        0.9 * e(4) + 0.5 * e(5) + 0.1 * e(9),  # e4 scores higher than target 5: rank 2
        e(8),                                # target 11 scores 0: e8 higher, 6 others tie at 0 -> 1 + 1 + 3
        e(0),                                # outside the bank: target 6 ties with all 7 others -> 1 + 3.5
    ])
    rank, n_other = retrieval_ranks(queries, np.array([5, 5, 11, 6]), bank)
    np.testing.assert_allclose(rank, [1, 2, 5, 4.5])
    np.testing.assert_array_equal(n_other, [7, 7, 7, 7])


def test_identical_vectors_are_not_competitors(tmp_path):
    v = one_hot_docs([4])[0]  # e0..e3
    doc = np.stack([v[0], v[1], v[1], v[2]])  # chunk 2 repeats chunk 1
    store = make_store(tmp_path / "s", [v, doc], splits=[0, 2])
    bank = Bank.for_split(store, "test")  # chunks 4..7
    rank, n_other = retrieval_ranks(np.stack([v[1], 0.5 * v[1] + v[2]]), np.array([6, 6]), bank)
    np.testing.assert_allclose(rank, [1, 2])  # the copy at chunk 5 neither beats nor ties the target
    np.testing.assert_array_equal(n_other, [2, 2])


def test_streamed_bank_matches_brute_force(tmp_path):
    store = make_store(tmp_path / "s", random_docs(n_docs=30, dim=16, seed=1))
    ids = store.split_chunks("test")
    q = np.random.default_rng(0).normal(size=(len(ids), 16)).astype(np.float32)
    cached = Bank(store, ids)
    streamed = Bank(store, ids, cache_floats=16 * 7)  # 7 rows per block
    assert streamed.block_rows == 7 and streamed._unit is None
    r1, _ = retrieval_ranks(q, ids, cached)
    r2, _ = retrieval_ranks(q, ids, streamed)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    S = qn @ store.get(ids).T  # store vectors are unit-norm
    expected = 1 + (S > S[np.arange(len(ids)), np.arange(len(ids))][:, None]).sum(1)
    np.testing.assert_array_equal(r1, expected)
    np.testing.assert_array_equal(r2, expected)


def test_in_document_ranks_by_hand(onehot):
    # target 6 (doc 1 = chunks 4..7); query e4: e4 higher, e5 and e7 tie with the target at 0
    rank, n_other = in_document_ranks(np.stack([e(4), e(6), e(9)]), np.array([6, 6, 10]), onehot)
    np.testing.assert_allclose(rank, [1 + 1 + 1, 1, 1 + 1 + 1])
    np.testing.assert_array_equal(n_other, [3, 3, 3])


def test_copy_last_and_oracle_metrics_by_hand(onehot):
    oracle = evaluate_predictor(OracleNext(onehot), onehot, "test", context_length=3)
    assert oracle["windows"] == 6 and oracle["bank_size"] == 8
    for k in ("cosine", "r@1", "r@10", "mrr", "in_doc_mrr", "contrastive_accuracy"):
        assert oracle[k] == pytest.approx(1.0)
    assert oracle["margin"] == pytest.approx(1.0)  # cos(y, target) 1 - cos(y, previous) 0
    copy = evaluate_predictor(CopyLastBaseline(), onehot, "test", context_length=3)
    assert copy["cosine"] == pytest.approx(0.0)
    assert copy["margin"] == pytest.approx(-1.0)  # defined as cos(y, target) - cos(y, context[-1])
    # global: the copied chunk scores 1 > 0, the other 6 tie with the target -> rank 1 + 1 + 3 = 5
    assert copy["mrr"] == pytest.approx(1 / 5)
    assert copy["r@5"] == pytest.approx(1.0) and copy["r@1"] == 0.0
    # in-document: copied chunk higher, 2 ties -> rank 3
    assert copy["in_doc_mrr"] == pytest.approx(1 / 3)
    # contrastive accuracy: 1 - (rank - 1) / 7 others
    assert copy["contrastive_accuracy"] == pytest.approx(1 - 4 / 7)


def test_copy_last_is_perfect_when_chunks_repeat(tmp_path):
    eye = np.eye(6, dtype=np.float32)
    # train e0 e1 e2; test: e3 e3 e3 e3 (a document that repeats itself) and e4 e5
    store = make_store(tmp_path / "s", [eye[[0, 1, 2]], eye[[3, 3, 3, 3]], eye[[4, 5]]], splits=[0, 2, 2])
    res = evaluate_predictor(CopyLastBaseline(), store, "test", context_length=2)
    assert res["windows"] == 4 and res["bank_size"] == 6
    # 3 of 4 windows copy the identical chunk: cosine 1 and rank 1 (the copies are the same concept)
    assert res["cosine"] == pytest.approx(3 / 4)
    # window e4 -> e5: e4 scores 1, the 4 e3 chunks tie with the target at 0 -> rank 1 + 1 + 0.5 * 4
    assert res["mrr"] == pytest.approx((3 * 1 + 1 / 4) / 4)
    assert res["r@1"] == pytest.approx(3 / 4)
