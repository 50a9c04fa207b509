"""Streamed training of the default recipe (AMN, energy head, selection by val energy score) holds memory that
does not grow with the store: a store 80x larger may cost more only by its documents (per-document arrays),
never by its chunks. Validation over val windows read from the store gives the numbers an in-RAM table gives.

The bound is checked on traced allocations (numpy arrays and Python objects; tracemalloc), which is where an
O(N) array would show: a table of every validation window's rows, a per-chunk array read whole, a list of
every window of a split, a list of every block of an epoch."""

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from storekit import FAKE_FINGERPRINT, build_store
from nextvec.config import LVMConfig, load_config
from nextvec.data import streaming
from nextvec.data.dataset import StoreWindows, WindowDataset
from nextvec.data.windows import window_subset
from nextvec.store import ConceptStore, StoreWriter
from nextvec.train import loop as train_loop
from nextvec.train.loop import train

CHUNKS_PER_DOC = 80
BYTES_PER_DOC = 64  # allowance for O(documents) arrays (offsets, splits, the epoch's permutation, ...)
SLACK = 128 * 1024  # rows of one val batch (they overlap more in the small store), run-to-run variation


def equal_docs(n_docs: int, dim: int = 64, seed: int = 0) -> list[np.ndarray]:
    """n_docs documents of CHUNKS_PER_DOC unit random vectors: two stores differ only in size."""
    v = np.random.default_rng(seed).standard_normal((n_docs * CHUNKS_PER_DOC, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return list(v.reshape(n_docs, CHUNKS_PER_DOC, dim))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """4,000 and 320,000 chunks (50 and 4,000 documents), 64-d."""
    root = tmp_path_factory.mktemp("sizes")
    return [build_store(root / f"s{n}", equal_docs(n), fractions=(0.8, 0.1, 0.1), shard_docs=1000)
            for n in (50, 4000)]


def default_recipe(*overrides: str) -> LVMConfig:
    """The default recipe's model, loss and validation, narrowed to test size, streamed."""
    return load_config(LVMConfig, None, [
        "model.context_length=16", "model.hidden_dim=32", "model.head_width=32", "model.noise_dim=16",
        "train.batch_size=8", "train.max_steps=4", "train.val_every=2", "train.val_max_windows=512",
        "train.shuffle_buffer=64", "train.memory=false", "train.data_source=stream", "train.threads=1",
        "train.progress=false", "train.device=cpu", *overrides])


class InlineReadAhead:
    """ReadAhead that loads each block when it is asked for: the peak no longer depends on thread timing (the
    real one holds read_ahead + 1 blocks, whatever the store's size)."""

    def __init__(self, items, load, ahead: int = 2):
        self._loaded = map(load, items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._loaded)

    def stop(self) -> None:
        pass


def traced_peak(store, out: Path) -> int:
    """Peak traced bytes of a streamed run on the open `store` (opening it, and the integrity check of its
    small files, is the store's business: not measured)."""
    tracemalloc.start()
    try:
        train(store, default_recipe(), out)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_streamed_default_recipe_memory_does_not_grow_with_chunks(stores, tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "ReadAhead", InlineReadAhead)
    monkeypatch.setattr(train_loop, "open_store", lambda store: store)
    small, large = stores
    train(small, default_recipe(), tmp_path / "warm")  # imports and first-call caches are not the store's
    peaks = [traced_peak(s, tmp_path / f"run{i}") for i, s in enumerate(stores)]
    allowed = BYTES_PER_DOC * (large.n_docs - small.n_docs) + SLACK
    # an O(N) int64 array alone would add 8 * 316,000 = 2.5 MB; a table of the val windows' rows 2.2 MB
    assert peaks[1] - peaks[0] < allowed, f"peak traced memory {peaks} grows with the store beyond {allowed} B"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_validation_reading_per_batch_gives_the_in_ram_numbers(tmp_path, monkeypatch, dtype):
    # a float16 store: StoreWindows upcasts each batch, WindowDataset holds a float32 table; the same values
    docs = equal_docs(30, dim=16)
    w = StoreWriter(tmp_path / "s", dict(FAKE_FINGERPRINT, dim=16), params={"source": "test"}, dtype=dtype)
    w.add_shard([(f"doc{d}", [f"d{d} s{p}" for p in range(len(v))]) for d, v in enumerate(docs)],
                np.concatenate(docs), source_end=len(docs))
    w.finalize((0.5, 0.5, 0.0), 0)
    store = ConceptStore(tmp_path / "s")
    T = 8
    targets = window_subset(store, "val", 500, 0)[0]
    lazy, table = StoreWindows(store, "val", targets, T), WindowDataset(store, "val", T, 0, targets)
    rows = torch.tensor([3, 0, len(targets) - 1, 17, 17])
    a, b = lazy.get_batch(rows), table.get_batch(rows)
    for f in ("context", "mask", "target", "doc"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    # the whole run: every loss and validation metric as with the validation windows in an in-RAM table
    cfg = default_recipe(f"model.context_length={T}", "train.max_steps=6", "train.batch_size=16")
    train(store.root, cfg, tmp_path / "lazy")
    monkeypatch.setattr(train_loop, "StoreWindows", lambda st, split, tg, T, device: WindowDataset(st, split, T, 0, tg,
                                                                                                    device))
    train(store.root, cfg, tmp_path / "table")
    assert records(tmp_path / "lazy") == records(tmp_path / "table")
    assert any("val/energy_score" in r for r in records(tmp_path / "lazy"))


def records(run: Path) -> list[dict]:
    out = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "seal"} for r in out]
