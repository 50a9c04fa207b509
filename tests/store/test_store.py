import json

import numpy as np
import pytest

from storekit import FAKE_FINGERPRINT, build_store, random_docs
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.store import ConceptStore, StoreWriter
from nextvec.store.writer import split_documents


def test_round_trip(tmp_path):
    docs = random_docs(n_docs=10, seed=3)
    texts = [[f"doc {d} sentence {p} é" for p in range(len(v))] for d, v in enumerate(docs)]
    s = build_store(tmp_path / "s", docs, texts=texts)
    flat = np.concatenate(docs)
    assert len(s) == len(flat) and s.n_docs == 10
    np.testing.assert_array_equal(s.get(slice(None)), flat)
    for d in range(10):
        a, b = s.doc_range(d)
        assert list(s.chunk_pos[a:b]) == list(range(len(docs[d])))
        assert (s.chunk_doc[a:b] == d).all()
        assert s.texts(range(a, b)) == texts[d]
    assert s.doc_ids == [f"doc{d}" for d in range(10)]
    assert isinstance(s.vectors, np.memmap)


def test_train_stats_are_train_only(tmp_path):
    docs = random_docs(n_docs=12, seed=1)
    s = build_store(tmp_path / "s", docs)
    train = s.get(s.split_chunks("train"))
    np.testing.assert_allclose(s.mean, train.mean(0), atol=1e-6)
    np.testing.assert_allclose(s.std, train.std(0), atol=1e-5)


def test_split_is_document_level_disjoint_and_seeded(tmp_path):
    codes = split_documents(100, (0.8, 0.1, 0.1), seed=5)
    assert np.bincount(codes).tolist() == [80, 10, 10]
    assert (codes == split_documents(100, (0.8, 0.1, 0.1), seed=5)).all()
    assert (codes != split_documents(100, (0.8, 0.1, 0.1), seed=6)).any()
    s = build_store(tmp_path / "s", random_docs(n_docs=15))
    doc_sets = [set(s.chunk_doc[s.split_chunks(x)]) for x in ("train", "val", "test")]
    assert not (doc_sets[0] & doc_sets[1] or doc_sets[0] & doc_sets[2] or doc_sets[1] & doc_sets[2])
    assert sum(len(x) for x in doc_sets) == 15


def test_tiny_corpus_still_gets_val_and_test():
    assert sorted(np.bincount(split_documents(3, (0.8, 0.1, 0.1), 0), minlength=3)) == [1, 1, 1]


def test_bad_fractions_refused():
    with pytest.raises(NextvecError, match="summing to 1"):
        split_documents(10, (0.5, 0.1, 0.1), 0)


def test_incomplete_store_refused_then_resumable(tmp_path):
    fp = dict(FAKE_FINGERPRINT, dim=4)
    w = StoreWriter(tmp_path / "s", fp, {"source": "x"})
    w.add_shard([("a", ["a0", "a1"])], np.ones((2, 4), np.float32), source_end=1)
    with pytest.raises(NextvecError, match="incomplete"):
        ConceptStore(tmp_path / "s")
    w2 = StoreWriter(tmp_path / "s", fp, {"source": "x"})  # a new process picks up the manifest
    assert w2.source_consumed == 1 and w2.chunks_written == 2
    w2.add_shard([("b", ["b0"])], np.zeros((1, 4), np.float32), source_end=2)
    w2.finalize((1.0, 0.0, 0.0), 0)
    s = ConceptStore(tmp_path / "s")
    assert s.texts(range(3)) == ["a0", "a1", "b0"] and s.doc_ids == ["a", "b"]


def test_orphan_shard_from_a_kill_is_overwritten(tmp_path):
    fp = dict(FAKE_FINGERPRINT, dim=4)
    w = StoreWriter(tmp_path / "s", fp, {"source": "x"})
    w.add_shard([("a", ["a0"])], np.ones((1, 4), np.float32), source_end=1)
    # a kill after the shard files were renamed but before the manifest listed them:
    (tmp_path / "s" / "shards" / "shard-00001.jsonl").write_text(json.dumps({"id": "ghost", "chunks": ["g"]}) + "\n")
    w2 = StoreWriter(tmp_path / "s", fp, {"source": "x"})
    w2.add_shard([("b", ["b0"])], np.full((1, 4), 2, np.float32), source_end=2)
    w2.finalize((1.0, 0.0, 0.0), 0)
    assert ConceptStore(tmp_path / "s").doc_ids == ["a", "b"]


def test_other_encoder_refused(tmp_path):
    build_store(tmp_path / "s", random_docs(n_docs=4))
    other = dict(FAKE_FINGERPRINT, name="another-encoder")
    with pytest.raises(FingerprintMismatch, match="another-encoder"):
        StoreWriter(tmp_path / "s", other, {"source": "test"})


def test_other_params_refused(tmp_path):
    build_store(tmp_path / "s", random_docs(n_docs=4))
    with pytest.raises(NextvecError, match="other parameters"):
        StoreWriter(tmp_path / "s", FAKE_FINGERPRINT, {"source": "elsewhere"})


def test_nan_vectors_refused(tmp_path):
    w = StoreWriter(tmp_path / "s", dict(FAKE_FINGERPRINT, dim=2), {"source": "x"})
    with pytest.raises(NextvecError, match="NaN"):
        w.add_shard([("a", ["x"])], np.array([[np.nan, 0]], np.float32), 1)


def test_not_a_store(tmp_path):
    with pytest.raises(NextvecError, match="not a concept store"):
        ConceptStore(tmp_path)


def test_float16_store(tmp_path):
    fp = dict(FAKE_FINGERPRINT, dim=3)
    w = StoreWriter(tmp_path / "s", fp, {"source": "x"}, dtype="float16")
    w.add_shard([("a", ["x", "y"])], np.array([[0.5, 0.25, 1], [1, 0, 0]], np.float32), 1)
    w.finalize((1.0, 0.0, 0.0), 0)
    s = ConceptStore(tmp_path / "s")
    assert s.vectors.dtype == np.float16 and s.get(0).dtype == np.float32
    np.testing.assert_array_equal(s.get(0), [0.5, 0.25, 1])


def test_doc_of_and_pos_of_match_the_per_chunk_arrays(tmp_path):
    """Chunk -> document and position computed from doc_offsets equal the stored per-chunk arrays."""
    store = build_store(tmp_path / "s", random_docs(n_docs=30, min_len=1, max_len=9, dim=8))
    ids = np.arange(len(store))
    assert np.array_equal(store.doc_of(ids), store.chunk_doc[:]) and np.array_equal(store.pos_of(ids), store.chunk_pos[:])
    assert store.doc_of(np.array([len(store) - 1]))[0] == store.n_docs - 1


def test_window_subset_equals_the_subset_of_every_window(tmp_path):
    """The seeded subset drawn from window counts is the one drawn from the full list of windows."""
    from nextvec.data.windows import seeded_subset, window_subset, window_targets

    store = build_store(tmp_path / "s", random_docs(n_docs=60, min_len=1, max_len=12, dim=8))
    for split in ("train", "val", "test"):
        every = window_targets(store, split)
        for n, seed in ((1, 0), (7, 1), (len(every) - 1, 2), (len(every) + 5, 0)):
            sub, total = window_subset(store, split, n, seed)
            assert total == len(every) and np.array_equal(sub, seeded_subset(every, n, seed))
