"""Diverse batches: at most `max_per_doc` windows of one document in a batch, reshuffled every epoch,
sharded across processes like torch's DistributedSampler.

Consecutive windows of a document are near-duplicates; a batch full of them gives InfoNCE easy,
redundant negatives and the moment loss a skewed batch. The epoch's batches are a pure function of
(seed, epoch), so a resumed run rebuilds them and skips to the saved position.
"""

from __future__ import annotations

from collections import OrderedDict, deque

import numpy as np

from nextvec.errors import NextvecError


def diverse_batches(doc: np.ndarray, batch_size: int, max_per_doc: int, rng: np.random.Generator,
                    drop_last: bool = True) -> list[np.ndarray]:
    """Split a random permutation of windows into batches with <= max_per_doc windows per document.

    Windows are taken in permuted order; one whose document is already at the cap in the current batch
    waits (per document, first come first served) and is placed first in the next batch. At the end of
    the epoch, batches that cannot be filled without breaking the cap are short (dropped if drop_last).
    """
    waiting: OrderedDict[int, deque] = OrderedDict()  # doc -> windows deferred from earlier batches
    order = iter(rng.permutation(len(doc)))
    batches, exhausted = [], False
    while True:
        batch, count = [], {}
        for d in list(waiting):  # deferred windows first, up to the cap each
            q = waiting[d]
            while q and count.get(d, 0) < max_per_doc and len(batch) < batch_size:
                batch.append(q.popleft())
                count[d] = count.get(d, 0) + 1
            if not q:
                del waiting[d]
        while len(batch) < batch_size and not exhausted:
            w = next(order, None)
            if w is None:
                exhausted = True
                break
            d = int(doc[w])
            if count.get(d, 0) < max_per_doc:
                batch.append(int(w))
                count[d] = count.get(d, 0) + 1
            else:
                waiting.setdefault(d, deque()).append(int(w))
        if not batch:
            break
        if len(batch) == batch_size or not drop_last:
            batches.append(np.asarray(batch, dtype=np.int64))
        if exhausted and not waiting and len(batch) < batch_size:
            break
    return batches


class DiverseBatchSampler:
    """Yields arrays of window indices for one epoch (`set_epoch` picks it), this rank's share only.

    Args:
        doc: (M,) document of each window.
        batch_size: windows per batch (per process).
        max_per_doc: cap on windows of one document in a batch (default 8).
        seed: shuffling seed; epoch e uses rng (seed, e).
        rank, world_size: DistributedSampler-style sharding: every rank builds the same epoch and takes
            batches rank, rank + world_size, ...; all ranks get the same number of batches.
        drop_last: drop short batches.
    """

    def __init__(self, doc: np.ndarray, batch_size: int, max_per_doc: int = 8, seed: int = 0, rank: int = 0,
                 world_size: int = 1, drop_last: bool = True):
        if batch_size < 1 or max_per_doc < 1:
            raise NextvecError("batch_size and max_per_doc must be at least 1")
        if not 0 <= rank < world_size:
            raise NextvecError(f"rank {rank} is outside world size {world_size}")
        self.doc = np.asarray(doc)
        self.batch_size, self.max_per_doc, self.seed = batch_size, max_per_doc, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """This rank's batches of `epoch` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            every = diverse_batches(self.doc, self.batch_size, self.max_per_doc, rng, self.drop_last)
            n = len(every) // self.world_size * self.world_size
            self._cache = (epoch, every[self.rank:n:self.world_size])
        return self._cache[1]

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
