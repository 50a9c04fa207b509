"""The streaming window source: every window once per epoch, no window across documents, seeded shuffling,
exact resume (directly and through the trainer), disjoint ranks, float16 upcast, the auto choice."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from storekit import build_store, random_docs
from nextvec.config import LVMConfig, TrainConfig, load_config
from nextvec.data.streaming import StreamingWindows, train_split_gb, use_streaming
from nextvec.data.windows import window_targets
from nextvec.errors import NextvecError
from nextvec.store import ConceptStore
from nextvec.run.checkpoint import read_checkpoint
from nextvec.train.loop import train

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """60 documents of 1..14 chunks (1-chunk documents have no window), unique random vectors."""
    return build_store(tmp_path_factory.mktemp("s") / "store", random_docs(n_docs=60, min_len=1, max_len=14),
                       fractions=(0.8, 0.1, 0.1))


def source(store, **kw):
    args = dict(context_length=3, hard_negatives=2, batch_size=8, seed=0, buffer_windows=20)
    args.update(kw)
    return StreamingWindows(store, **args)


def epoch_windows(src, epoch):
    """The window ids of each batch of an epoch, from the plan."""
    out = []
    for block in src.plan(epoch):
        for j in range(block.n_batches):
            out.append(block.windows[j * src.B : (j + 1) * src.B])
    return out


def chunk_of(store):
    """vector bytes -> store chunk id (the vectors are unique)."""
    return {store.get(i).tobytes(): i for i in range(len(store))}


def test_every_window_once_per_epoch_and_batches_match_the_plan(store):
    src = source(store)
    all_windows = np.sort(window_targets(store, "train"))
    for epoch in (0, 1):
        batches = epoch_windows(src, epoch)
        assert len(batches) == src.n_batches(epoch)
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), all_windows)
    lookup = chunk_of(store)
    for i, ids in enumerate(epoch_windows(src, 0)):
        b = src.batch(0, i)
        assert [lookup[t.numpy().tobytes()] for t in b.target] == ids.tolist()
    src.close()


def test_no_window_crosses_documents_and_contexts_are_the_preceding_chunks(store):
    src = source(store)
    lookup = chunk_of(store)
    for i in range(src.n_batches(0)):
        b = src.batch(0, i, torch.Generator().manual_seed(i))
        for row in range(len(b.target)):
            t = lookup[b.target[row].numpy().tobytes()]
            ctx = [lookup[v.numpy().tobytes()] for v, m in zip(b.context[row], b.mask[row]) if m]
            assert ctx == list(range(t - len(ctx), t))
            assert set(store.chunk_doc[ctx + [t]]) == {store.chunk_doc[t]}
            assert len(ctx) == min(3, store.chunk_pos[t])
            for v, m in zip(b.negatives[row], b.negatives_mask[row]):
                if m:
                    n = lookup[v.numpy().tobytes()]
                    assert n != t and store.chunk_doc[n] == store.chunk_doc[t]
    src.close()


def test_shuffling_is_seeded(store):
    a, b, c = (epoch_windows(source(store, seed=s), 0) for s in (0, 0, 1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert not np.array_equal(np.concatenate(a), np.concatenate(epoch_windows(source(store), 1)))


def test_resume_at_any_batch_is_exact(store):
    straight = source(store)
    n = straight.n_batches(1)
    seq = [straight.batch(1, i, torch.Generator().manual_seed(i)) for i in range(n)]
    for k in (0, 3, n - 1):
        resumed = source(store)
        for i in range(k, n):
            b = resumed.batch(1, i, torch.Generator().manual_seed(i))
            for name in ("context", "mask", "target", "negatives", "negatives_mask", "doc"):
                assert torch.equal(getattr(b, name), getattr(seq[i], name)), (k, i, name)
        resumed.close()
    straight.close()


def test_ranks_read_disjoint_documents_with_equal_batch_counts(store):
    ranks = [source(store, shard=(r, 2)) for r in (0, 1)]
    for epoch in (0, 1):
        docs = [set(store.chunk_doc[np.concatenate(epoch_windows(src, epoch))].tolist()) for src in ranks]
        assert docs[0] and docs[1] and not docs[0] & docs[1]
        assert ranks[0].n_batches(epoch) == ranks[1].n_batches(epoch) == len(epoch_windows(ranks[0], epoch))
        assert all(len(w) == 8 for src in ranks for w in epoch_windows(src, epoch))
        seen = np.concatenate([np.concatenate(epoch_windows(src, epoch)) for src in ranks])
        assert len(np.unique(seen)) == len(seen)
        longest = int(np.diff(store.doc_offsets).max()) - 1
        assert len(window_targets(store, "train")) - len(seen) < 2 * (8 + longest)  # a batch + a doc per rank


def test_float16_store_is_upcast_per_batch(tmp_path):
    docs = random_docs(n_docs=10)
    s32 = build_store(tmp_path / "a", docs)
    w = __import__("nextvec.store", fromlist=["StoreWriter"]).StoreWriter(
        tmp_path / "b", dict(s32.fingerprint), params={"source": "test"}, dtype="float16")
    w.add_shard([(f"doc{d}", [f"d{d} s{p}" for p in range(len(v))]) for d, v in enumerate(docs)],
                np.concatenate(docs), source_end=10)
    w.finalize((0.6, 0.2, 0.2), 0)
    s16 = ConceptStore(tmp_path / "b")
    src = source(s16, buffer_windows=1000)
    ds = src._load(next(src.plan(0)))[1]
    assert ds.vectors.dtype == torch.float16
    b = src.batch(0, 0)
    assert b.target.dtype == b.context.dtype == b.negatives.dtype == torch.float32
    src.close()


def test_auto_choice_and_forcing(store):
    gb = train_split_gb(store)
    assert gb == pytest.approx(len(store.split_chunks("train")) * store.dim * 4 / 1e9)
    assert use_streaming(store, TrainConfig(max_ram_gb=gb / 2))
    assert not use_streaming(store, TrainConfig(max_ram_gb=gb * 2))
    assert use_streaming(store, TrainConfig(data_source="stream", max_ram_gb=gb * 2))
    assert not use_streaming(store, TrainConfig(data_source="memory", max_ram_gb=gb / 2))
    assert not use_streaming(store, TrainConfig(overfit=32, max_ram_gb=gb / 2))
    with pytest.raises(NextvecError, match="in-RAM source"):
        use_streaming(store, TrainConfig(data_source="stream", train_windows=100))


def test_trainer_on_a_streamed_store_resumes_bit_for_bit(store, tmp_path):
    c = load_config(LVMConfig, TINY, ["train.max_steps=50", "train.val_every=10", "model.dropout=0.1",
                                      "train.data_source=stream", "train.shuffle_buffer=20"])
    s = train(store.root, c, tmp_path / "straight")
    assert s["data_source"] == "stream" and s["epochs"] > 2  # crosses epoch boundaries
    train(store.root, c, tmp_path / "split", stop_after=23)
    train(store.root, None, tmp_path / "split", resume=True)
    a, _ = read_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = lambda run: [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]  # noqa: E731
    assert steps(tmp_path / "straight") == steps(tmp_path / "split")
