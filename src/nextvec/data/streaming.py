"""Training window sources: the whole split in RAM (small stores) or streamed from the memory-mapped store.

Both answer `n_batches(epoch)` and `batch(epoch, i, generator) -> WindowBatch`; the epoch's batches are a
pure function of (seed, epoch, rank), so a resumed run asks for batch i and gets what it would have had.

Streaming, per epoch and rank:
  1. the train documents (with >= 2 chunks) are permuted with rng(seed, epoch) and the permutation is cut
     into world_size runs of equal window counts (to within one document): rank r reads run r only, so
     ranks read disjoint documents;
  2. the rank's documents are cut, in that order, into blocks of about `buffer_windows` windows (the
     shuffle buffer); a block's windows plus the few left over from the previous block are permuted and
     cut into batches; what does not fill a batch is carried into the next block;
  3. a background thread reads the next blocks (one contiguous read per document, in the store's dtype:
     float16 stays float16 until a batch is gathered) while the current one trains.
Memory: `read_ahead + 1` blocks, whatever the store size. Every window of the rank's documents is in
exactly one batch (one process: the last batch may be short; under torchrun all ranks stop at the
smallest rank's count of full batches, so up to a batch plus one document's windows per rank wait for
the next epoch's draw).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from nextvec.data.dataset import WindowBatch, WindowDataset
from nextvec.data.sampler import DiverseBatchSampler
from nextvec.errors import NextvecError
from nextvec.readahead import ReadAhead
from nextvec.store.reader import concat_ranges


def train_split_gb(store) -> float:
    """GB the train split's vectors take in RAM as float32 (what the in-RAM source would hold)."""
    docs = store.split_docs("train")
    return float(np.diff(store.doc_offsets)[docs].sum()) * store.dim * 4 / 1e9


def use_streaming(store, tc) -> bool:
    """train.data_source: memory | stream | auto (stream when the train split exceeds train.max_ram_gb)."""
    subset = tc.train_windows or tc.overfit
    if tc.data_source == "stream" and subset:
        raise NextvecError("train.data_source=stream reads whole documents; train.train_windows and train.overfit "
                           "pick window subsets, which use the in-RAM source (data_source=memory or auto)")
    if tc.data_source != "auto":
        return tc.data_source == "stream"
    return not subset and train_split_gb(store) > tc.max_ram_gb


@dataclass
class InRamWindows:
    """The split in RAM, batches from the diverse sampler (at most max_windows_per_doc per document)."""

    ds: WindowDataset
    sampler: DiverseBatchSampler

    def n_batches(self, epoch: int) -> int:
        return len(self.sampler.batches(epoch))

    def batch(self, epoch: int, i: int, generator: torch.Generator | None = None) -> WindowBatch:
        return self.ds.get_batch(self.sampler.batches(epoch)[i], generator)

    def prefetch(self, epoch: int, i: int) -> None:
        pass  # already in RAM

    def __len__(self) -> int:
        return len(self.ds)

    def close(self) -> None:
        pass


@dataclass
class Block:
    """One shuffle buffer: its windows in batch order, and which of the epoch's batches they make."""

    first_batch: int
    n_batches: int
    windows: np.ndarray  # (>= n_batches * B or the epoch's last, short batch) store chunk ids, batch order


class StreamingWindows:
    """Batches of the train split streamed from the memory-mapped store (see the module docstring)."""

    READ_AHEAD = 2  # blocks read ahead of the one being trained on

    def __init__(self, store, context_length: int, hard_negatives: int, batch_size: int, seed: int = 0,
                 shard: tuple[int, int] = (0, 1), buffer_windows: int = 65536, device: str | torch.device = "cpu"):
        """`shard`: (rank, world_size) of this process under DDP."""
        rank, world_size = shard
        docs = store.split_docs("train")
        lengths = np.diff(store.doc_offsets)[docs]
        self.docs = docs[lengths >= 2]  # (n_docs,) store document ids with at least one window
        self.windows_per_doc = lengths[lengths >= 2] - 1  # (n_docs,)
        if self.windows_per_doc.sum() == 0:
            raise NextvecError(f"the train split of {store.root} has no windows (documents need at least 2 chunks)")
        self.store, self.T, self.K, self.B = store, context_length, hard_negatives, batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.buffer = max(buffer_windows, batch_size)
        self.device, self.read_ahead = device, self.READ_AHEAD
        self._cursor: tuple[int, int] | None = None  # (epoch, next batch) the reader is positioned at
        self._reader: ReadAhead | None = None
        self._block: tuple[Block, WindowDataset] | None = None

    def __len__(self) -> int:
        return int(self.windows_per_doc.sum())

    def rank_docs(self, epoch: int, rank: int | None = None) -> np.ndarray:
        """Indices into self.docs that `rank` reads in `epoch`, in reading order."""
        perm = np.random.default_rng([self.seed, epoch]).permutation(len(self.docs))
        if self.world_size == 1:
            return perm
        w = self.windows_per_doc[perm]
        # consecutive runs of the permutation with equal window counts (to within one document) per rank
        owner = ((np.cumsum(w) - w / 2) * self.world_size // w.sum()).astype(np.int64)
        return perm[owner == (self.rank if rank is None else rank)]

    def n_batches(self, epoch: int) -> int:
        if self.world_size == 1:
            return math.ceil(len(self) / self.B)
        return min(int(self.windows_per_doc[self.rank_docs(epoch, r)].sum()) // self.B for r in range(self.world_size))

    def plan(self, epoch: int) -> Iterator[Block]:
        """This rank's blocks of `epoch` (window ids only: cheap, no vectors read)."""
        mine = self.rank_docs(epoch)
        rng = np.random.default_rng([self.seed, epoch, self.rank, 1])
        ends = np.cumsum(self.windows_per_doc[mine])
        cuts = np.searchsorted(ends, np.arange(self.buffer, ends[-1] if len(ends) else 0, self.buffer), "left") + 1
        carry, batch, total = np.zeros(0, np.int64), 0, self.n_batches(epoch)
        bounds = np.unique(np.clip(cuts, 0, len(mine)))  # each group [a, b) read in turn: no list of all of them
        for a, b in zip(np.append(0, bounds), np.append(bounds, len(mine))):
            if batch >= total:
                return
            group = mine[a:b]
            if group.size == 0:
                continue
            d = self.docs[group]
            new = concat_ranges(self.store.doc_offsets[d] + 1, self.windows_per_doc[group])
            pool = rng.permutation(np.concatenate([carry, new]))
            last = group[-1] == mine[-1]
            n = math.ceil(len(pool) / self.B) if last else len(pool) // self.B
            n = min(n, total - batch)
            if n:
                yield Block(batch, n, pool)
            carry = pool[n * self.B :]
            batch += n

    def prefetch(self, epoch: int, i: int) -> None:
        """Start reading from batch i of `epoch` in the background (the trainer calls this before its first
        validation, so the first block loads meanwhile)."""
        if self._cursor != (epoch, i):
            self.close()
            blocks = (b for b in self.plan(epoch) if b.first_batch + b.n_batches > i)
            self._reader = ReadAhead(blocks, self._load, self.read_ahead)
            self._cursor = (epoch, i)

    def batch(self, epoch: int, i: int, generator: torch.Generator | None = None) -> WindowBatch:
        """Batch i of `epoch` for this rank; sequential calls stream, any other call repositions the reader."""
        self.prefetch(epoch, i)
        if self._block is None:
            self._block = self._next_block()
        block, ds = self._block
        while i >= block.first_batch + block.n_batches:
            self._block = self._next_block()
            block, ds = self._block
        j = i - block.first_batch
        rows = torch.arange(j * self.B, min((j + 1) * self.B, len(block.windows)))
        self._cursor = (epoch, i + 1)
        return ds.get_batch(rows, generator)

    def _next_block(self) -> tuple[Block, WindowDataset]:
        item = next(self._reader, None)
        if item is None:
            raise NextvecError("the streaming reader ran out of blocks before the epoch's last batch")
        return item

    def _load(self, block: Block) -> tuple[Block, WindowDataset]:
        return block, WindowDataset.of_windows(self.store, "train", block.windows, self.T, self.K, self.device)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stop()
        self._reader, self._block, self._cursor = None, None, None
