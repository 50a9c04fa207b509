"""Approximate indexes: IVF with nprobe = nlist returns the exact answer; auto picks by size; built once,
saved with the store and loaded from there; recall against exact search is measured at build. IVF-PQ
re-scores its candidates exactly from the store: with every list probed and every row re-ranked it is exact."""

import numpy as np
import pytest

from storekit import build_store, random_docs
from nextvec.config import IndexConfig
from nextvec.decode.nearest import RetrievalDecoder
from nextvec.errors import NextvecError
from nextvec.index import exact_top_k, store_unit_index, unit_rows_of
from nextvec.models.baselines import KnnSuccessorBaseline, train_chunks_with_successor
from nextvec.models.memory import SuccessorMemory


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("s") / "store", random_docs(n_docs=200, min_len=5, max_len=15, dim=16),
                       shard_docs=50)


def queries(store, n=300):
    return unit_rows_of(store, np.random.default_rng(5).choice(len(store), n, replace=False))


def test_ivf_with_nprobe_equal_to_nlist_is_exact(store):
    ids = store.split_chunks("train")
    exact = store_unit_index(store, ids, "t-exact", IndexConfig(kind="flat"))
    logs = []
    ivf = store_unit_index(store, ids, "t-ivf", IndexConfig(kind="ivf", nlist=16, nprobe=16), log=logs.append)
    q = queries(store)
    s1, i1 = exact.search(q, 8)
    s2, i2 = ivf.search(q, 8)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-6)
    assert ivf.meta["recall"] == 1.0 and "recall@8 vs exact 1.000" in logs[0]


def test_exact_top_k_matches_brute_force(store):
    ids = store.split_chunks("train")
    q = queries(store, 50)
    bank = unit_rows_of(store, ids)
    want = np.argsort(-(q @ bank.T), axis=1)[:, :5]
    got = exact_top_k(store, ids, q, 5, block=100)
    assert all(set(a) == set(b) for a, b in zip(want, got))


def test_few_probes_lose_recall_and_auto_picks_by_size(store):
    ids = store.split_chunks("train")
    low = store_unit_index(store, ids, "t-low", IndexConfig(kind="ivf", nlist=16, nprobe=1), log=lambda m: None)
    assert low.meta["recall"] < 1.0  # the measurement can tell an approximate index from an exact one
    assert "meta" not in vars(store_unit_index(store, ids, "t-auto", IndexConfig(approx_above=len(ids))))  # flat
    big = store_unit_index(store, ids, "t-auto", IndexConfig(approx_above=len(ids) - 1), log=lambda m: None)
    assert big.meta["kind"] == "ivf"


def test_built_once_saved_and_reloaded(store):
    ids = store.split_chunks("train")
    cfg = IndexConfig(kind="hnsw", hnsw_m=8)
    logs = []
    a = store_unit_index(store, ids, "t-hnsw", cfg, log=logs.append)
    assert (store.root / "indexes" / "t-hnsw.faiss").is_file() and len(logs) == 1
    b = store_unit_index(store, ids, "t-hnsw", cfg, log=logs.append)
    assert len(logs) == 1  # loaded, not rebuilt
    q = queries(store)
    np.testing.assert_array_equal(a.search(q, 4)[1], b.search(q, 4)[1])
    store_unit_index(store, ids[:-1], "t-hnsw", cfg, log=logs.append)  # other rows: rebuilt
    assert len(logs) == 2


def test_memory_baseline_and_decoder_give_the_exact_answers_through_an_exact_ivf(store):
    cfg_ivf, cfg_flat = IndexConfig(kind="ivf", nlist=8, nprobe=8), IndexConfig(kind="flat")
    rng = np.random.default_rng(0)
    ctx = rng.normal(size=(40, 3, store.dim)).astype(np.float32)
    mask = np.ones((40, 3), bool)
    m1, b1 = SuccessorMemory(store, index=cfg_flat).lookup(ctx, mask)
    m2, b2 = SuccessorMemory(store, index=cfg_ivf).lookup(ctx, mask)
    np.testing.assert_allclose(m1, m2, atol=1e-6)
    np.testing.assert_allclose(b1, b2, atol=1e-6)
    import torch

    t = torch.from_numpy(ctx)
    y1 = KnnSuccessorBaseline(store, index=cfg_flat).predict(t, torch.from_numpy(mask)).y_dec
    y2 = KnnSuccessorBaseline(store, index=cfg_ivf).predict(t, torch.from_numpy(mask)).y_dec
    assert torch.equal(y1, y2)
    d1 = RetrievalDecoder(store, index_kind="flat").search(ctx[:, 0], 3)[1]
    d2 = RetrievalDecoder(store, index_kind="ivf", index=IndexConfig(nlist=8, nprobe=8)).search(ctx[:, 0], 3)[1]
    np.testing.assert_array_equal(d1, d2)
    assert len(train_chunks_with_successor(store, "t")) == len(SuccessorMemory(store, index=cfg_ivf)._index)


def test_ivfpq_with_every_list_probed_and_every_row_reranked_is_exact(store):
    ids = store.split_chunks("train")
    exact = store_unit_index(store, ids, "t-exact", IndexConfig(kind="flat"))
    logs = []
    cfg = IndexConfig(kind="ivfpq", nlist=8, nprobe=8, pq_m=4, rerank=len(ids))
    pq = store_unit_index(store, ids, "t-pq", cfg, log=logs.append)
    assert pq.meta["pq_m"] == 4 and len(pq) == len(ids) and pq.dim == store.dim and pq.fingerprint == store.fingerprint
    q = queries(store)
    s1, i1 = exact.search(q, 8)
    s2, i2 = pq.search(q, 8)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
    assert pq.meta["recall"] == 1.0 and "IVF-PQ nlist=8 nprobe=8 PQ4x8" in logs[0] and "recall@8 vs exact 1.000" in logs[0]


def test_ivfpq_scores_are_exact_cosines_of_approximate_candidates(store):
    ids = store.split_chunks("train")
    pq = store_unit_index(store, ids, "t-pq-coarse", IndexConfig(kind="ivfpq", nlist=16, nprobe=2, pq_m=2, rerank=12),
                          log=lambda m: None)
    q = queries(store)
    scores, got = pq.search(q, 5)
    assert pq.meta["recall"] < 1.0  # the candidates are approximate...
    assert np.isin(got, ids).all() and (np.diff(scores, axis=1) <= 0).all()
    v = store.get(got.reshape(-1)).astype(np.float64).reshape(*got.shape, -1)
    want = np.einsum("qkd,qd->qk", v / np.linalg.norm(v, axis=-1, keepdims=True), q)
    np.testing.assert_allclose(scores, want, atol=1e-5)  # ...their scores are exact cosines
    pq_scores, _ = pq.index.search(q, 5)
    assert np.abs(pq_scores - scores).max() > 1e-3  # which the PQ codes alone do not give


def test_auto_picks_flat_ivf_or_ivfpq_by_the_two_thresholds(store):
    ids = store.split_chunks("train")
    n = len(ids)
    assert "meta" not in vars(store_unit_index(store, ids, "t-auto2", IndexConfig(approx_above=n, compress_above=n)))
    ivf = store_unit_index(store, ids, "t-auto2", IndexConfig(approx_above=n - 1, compress_above=n), log=lambda m: None)
    assert ivf.meta["kind"] == "ivf" and ivf.store is None
    pq = store_unit_index(store, ids, "t-auto2", IndexConfig(approx_above=n - 2, compress_above=n - 1), log=lambda m: None)
    assert pq.meta["kind"] == "ivfpq" and pq.store is store
    assert pq.meta["pq_m"] == 16  # default 48 sub-quantizers: the largest divisor of the 16-d vectors below it


def test_auto_picks_hnsw_between_hnsw_above_and_approx_above(store):
    ids = store.split_chunks("train")
    n = len(ids)
    mid = store_unit_index(store, ids, "t-auto3", IndexConfig(hnsw_above=n - 1, approx_above=n), log=lambda m: None)
    assert mid.meta["kind"] == "hnsw"
    assert "meta" not in vars(store_unit_index(store, ids, "t-auto3", IndexConfig(hnsw_above=n, approx_above=n)))
    # hnsw_above at or above approx_above turns the band off: exact up to approx_above, IVF above
    ivf = store_unit_index(store, ids, "t-auto3", IndexConfig(hnsw_above=n, approx_above=n - 1), log=lambda m: None)
    assert ivf.meta["kind"] == "ivf"


def test_ivfpq_saved_reloaded_and_rebuilt_when_pq_m_changes(store):
    ids = store.split_chunks("train")
    cfg = IndexConfig(kind="ivfpq", nlist=8, pq_m=4)
    logs = []
    a = store_unit_index(store, ids, "t-pq-save", cfg, log=logs.append)
    assert (store.root / "indexes" / "t-pq-save.faiss").is_file() and len(logs) == 1
    b = store_unit_index(store, ids, "t-pq-save", cfg, log=logs.append)
    assert len(logs) == 1 and b.store is store  # loaded, not rebuilt, and re-ranks from the store
    b2 = store_unit_index(store, ids, "t-pq-save", IndexConfig(kind="ivfpq", nlist=8, pq_m=4, nprobe=2, rerank=100),
                          log=logs.append)
    assert len(logs) == 1 and b2.index.nprobe == 2 and b2.candidates(8) == 100  # search-time settings: no rebuild
    q = queries(store)
    sa, ia = a.search(q, 4)
    sb, ib = b.search(q, 4)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_allclose(sa, sb, atol=1e-6)
    c = store_unit_index(store, ids, "t-pq-save", IndexConfig(kind="ivfpq", nlist=8, pq_m=8), log=logs.append)
    assert len(logs) == 2 and c.meta["pq_m"] == 8 and "PQ8x8" in logs[1]  # other codes: rebuilt


def test_ivfpq_refuses_bad_queries_and_too_few_vectors(store):
    ids = store.split_chunks("train")
    pq = store_unit_index(store, ids, "t-pq-save", IndexConfig(kind="ivfpq", nlist=8, pq_m=4), log=lambda m: None)
    with pytest.raises(NextvecError, match=r"query vectors must be \(Q, 16\)"):
        pq.search(np.zeros(16, np.float32), 3)
    with pytest.raises(NextvecError, match=r"query vectors must be \(Q, 16\)"):
        pq.search(np.zeros((2, 8), np.float32), 3)
    with pytest.raises(NextvecError, match="needs at least 256 vectors"):
        store_unit_index(store, ids[:100], "t-pq-small", IndexConfig(kind="ivfpq", nlist=2), log=lambda m: None)
