"""Diverse batch sampler: the per-document cap, coverage, determinism and rank sharding."""

import numpy as np
import pytest

from nextvec.data.sampler import DiverseBatchSampler, diverse_batches
from nextvec.errors import NextvecError


def docs_of(sizes):
    return np.repeat(np.arange(len(sizes)), sizes)


@pytest.mark.parametrize("cap", [2, 3, 8])  # 10 documents: a cap of 1 can never fill 16
def test_cap_holds_in_every_batch(cap):
    doc = docs_of([50, 3, 20, 7, 1, 40, 12, 9, 30, 5])
    for drop_last in (True, False):
        batches = diverse_batches(doc, 16, cap, np.random.default_rng(0), drop_last)
        assert batches
        for b in batches:
            assert np.bincount(doc[b]).max() <= cap
            assert len(b) == 16 or not drop_last


def test_without_drop_last_every_window_appears_exactly_once():
    doc = docs_of([50, 3, 20, 7, 1, 40])
    batches = diverse_batches(doc, 10, 2, np.random.default_rng(1), drop_last=False)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(len(doc)))


def test_one_huge_document_gives_short_batches_not_a_broken_cap():
    doc = docs_of([1000, 2])
    batches = diverse_batches(doc, 8, 3, np.random.default_rng(0), drop_last=False)
    assert all(np.bincount(doc[b]).max() <= 3 for b in batches)
    assert sum(len(b) for b in batches) == 1002


def test_epochs_are_deterministic_and_different():
    doc = docs_of([30] * 10)
    s = DiverseBatchSampler(doc, 16, 4, seed=7)
    e0 = [b.tolist() for b in s.batches(0)]
    assert e0 == [b.tolist() for b in DiverseBatchSampler(doc, 16, 4, seed=7).batches(0)]
    s.set_epoch(1)
    assert [b.tolist() for b in s] != e0


def test_ranks_get_disjoint_equal_shares():
    doc = docs_of([25] * 12)
    shares = [DiverseBatchSampler(doc, 8, 4, seed=0, rank=r, world_size=3).batches(0) for r in range(3)]
    assert len({len(s) for s in shares}) == 1
    flat = np.concatenate([np.concatenate(s) for s in shares])
    assert len(flat) == len(np.unique(flat))
    every = DiverseBatchSampler(doc, 8, 4, seed=0).batches(0)
    assert [b.tolist() for b in shares[1]] == [b.tolist() for b in every[1::3]][: len(shares[1])]


def test_bad_arguments():
    with pytest.raises(NextvecError):
        DiverseBatchSampler(np.zeros(3), 0)
    with pytest.raises(NextvecError):
        DiverseBatchSampler(np.zeros(3), 2, rank=2, world_size=2)
