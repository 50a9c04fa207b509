"""Window dataset: contexts match the store, hard negatives come from the target's document and never
contain the positive (not even a repeated sentence with the same vector)."""

import numpy as np
import pytest
import torch

from storekit import build_store, random_docs
from nextvec.data.dataset import WindowDataset
from nextvec.data.windows import gather_windows, window_targets
from nextvec.errors import NextvecError


def test_batches_match_gather_windows(tiny_store):
    ds = WindowDataset(tiny_store, "train", 4, hard_negatives=2)
    rows = np.arange(0, len(ds), 3)
    b = ds.get_batch(rows, torch.Generator().manual_seed(0))
    ctx, mask, tgt = gather_windows(tiny_store, ds.targets[rows], 4)
    np.testing.assert_array_equal(b.context.numpy(), ctx)
    np.testing.assert_array_equal(b.mask.numpy(), mask)
    np.testing.assert_array_equal(b.target.numpy(), tgt)
    np.testing.assert_array_equal(b.doc.numpy(), tiny_store.chunk_doc[ds.targets[rows]])
    assert b.mask[:, -1].all()
    assert len(ds) == len(window_targets(tiny_store, "train"))


def test_hard_negatives_are_other_chunks_of_the_same_document(tiny_store):
    K = 3
    ds = WindowDataset(tiny_store, "train", 4, hard_negatives=K)
    b = ds.get_batch(np.arange(len(ds)), torch.Generator().manual_seed(1))
    vecs = tiny_store.get(np.arange(len(tiny_store)))
    for i, t in enumerate(ds.targets):
        a, e = tiny_store.doc_range(int(tiny_store.chunk_doc[t]))
        others = [c for c in range(a, e) if c != t]
        real = b.negatives[i][b.negatives_mask[i]].numpy()
        assert len(real) == min(K, len(others))  # drawn without repeats
        for v in real:
            match = np.flatnonzero((vecs[others] == v).all(1))
            assert len(match) == 1  # one of the other chunks of the document
            assert not (v == vecs[t]).all()  # never the positive
        assert (b.negatives[i][~b.negatives_mask[i]] == 0).all()


def test_short_documents_pad_and_mask(tmp_path):
    docs = random_docs(n_docs=6, min_len=2, max_len=2, seed=3)  # one other chunk per window
    store = build_store(tmp_path / "s", docs, fractions=(1.0, 0.0, 0.0))
    ds = WindowDataset(store, "train", 3, hard_negatives=4)
    b = ds.get_batch(np.arange(len(ds)))
    assert b.negatives.shape == (len(ds), 4, store.dim)
    assert b.negatives_mask.sum(1).tolist() == [1] * len(ds)


def test_repeated_sentence_vector_is_never_a_negative(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(6, 8)).astype(np.float32)
    v[4] = v[2]  # the same sentence twice in one document
    store = build_store(tmp_path / "s", [v], fractions=(1.0, 0.0, 0.0))
    ds = WindowDataset(store, "train", 3, hard_negatives=5)  # all other chunks are drawn
    row = int(np.flatnonzero(ds.targets == 2)[0])
    b = ds.get_batch([row] * 20, torch.Generator().manual_seed(0))
    assert b.negatives_mask.sum(1).tolist() == [4] * 20  # 5 others minus the duplicate of the positive
    assert not (b.negatives[b.negatives_mask] == torch.from_numpy(v[2])).all(-1).any()


def test_sampling_is_reproducible_from_the_generator(tiny_store):
    ds = WindowDataset(tiny_store, "train", 4, hard_negatives=3)
    a = ds.get_batch(np.arange(10), torch.Generator().manual_seed(5))
    b = ds.get_batch(np.arange(10), torch.Generator().manual_seed(5))
    assert torch.equal(a.negatives, b.negatives)


def test_getitem_and_target_validation(tiny_store):
    ds = WindowDataset(tiny_store, "val", 4)
    item = ds[0]
    assert item["context"].shape == (4, tiny_store.dim) and item["mask"][-1]
    with pytest.raises(NextvecError, match="not windows of the train split"):
        WindowDataset(tiny_store, "train", 4, targets=window_targets(tiny_store, "val")[:2])


def test_vector_keys_match_exactly_repeated_rows():
    from nextvec.data.dataset import vector_keys

    rng = np.random.default_rng(0)
    table = rng.normal(size=(1000, 16)).astype(np.float32)
    table[500] = table[3]
    keys = vector_keys(table, block=64)  # blocks must not change anything
    assert keys[500] == keys[3]
    assert len(np.unique(keys)) == 999
