"""Window dataset over one split of a store: (context, mask, target, K same-document hard negatives, doc).

The vectors of every chunk the windows touch are read ONCE from the memory-mapped store into a tensor
(plus one zero row used for padding); a batch is then a few index operations on that tensor, on whatever
device it lives, upcast to float32 per batch. Training never calls the encoder. For splits larger than
memory, data/streaming.py builds one such dataset per block of documents; `StoreWindows` (validation) reads
each batch's rows when it is asked for, so it holds no table at all.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from nextvec.data.windows import window_targets
from nextvec.errors import NextvecError
from nextvec.store.reader import concat_ranges


def vector_keys(table: np.ndarray, block: int = 1024) -> np.ndarray:
    """An int64 key per row, equal for bit-identical rows: a random integer combination of the float bits
    (integer sums are exact, so no rounding can split two copies). Comparing keys finds every repeat of
    a vector; a rare collision of different vectors only drops a negative, never lets the positive in."""
    coef = np.random.default_rng(0).integers(-(2**62), 2**62, size=table.shape[1], dtype=np.int64)
    keys = np.empty(len(table), dtype=np.int64)
    with np.errstate(over="ignore"):
        for s in range(0, len(table), block):  # a block at a time: a float16 table is never copied whole
            bits = np.ascontiguousarray(table[s:s + block], dtype=np.float32).view(np.int32)
            keys[s:s + block] = (bits.astype(np.int64) * coef).sum(1)  # wraps mod 2^64
    return keys


@dataclass
class WindowBatch:
    context: torch.Tensor  # (B, T, D) float32, left-padded with zeros
    mask: torch.Tensor  # (B, T) bool, True = real; mask[:, -1] always True
    target: torch.Tensor  # (B, D)
    negatives: torch.Tensor  # (B, K, D) other chunks of the target's document (zeros where masked)
    negatives_mask: torch.Tensor  # (B, K) bool, True = a real negative
    doc: torch.Tensor  # (B,) store document index of each window

    def to(self, device) -> "WindowBatch":
        return WindowBatch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


class WindowDataset(torch.utils.data.Dataset):
    """Every window of `split` (or the given `targets`, store chunk ids) with context length T.

    Args:
        store: a ConceptStore.
        split: "train", "val" or "test".
        context_length: T.
        hard_negatives: K same-document negatives sampled per window by `get_batch`.
        targets: optional subset of target chunk ids (must belong to `split`).
        device: where the vector table and index tensors live.
    """

    def __init__(self, store, split: str, context_length: int, hard_negatives: int = 0,
                 targets: np.ndarray | None = None, device: str | torch.device = "cpu"):
        all_targets = window_targets(store, split)
        if targets is None:
            targets = all_targets
        else:
            targets = np.asarray(targets, dtype=np.int64)
            if not np.isin(targets, all_targets).all():
                raise NextvecError(f"some requested targets are not windows of the {split} split")
        if len(targets) == 0:
            raise NextvecError(f"the {split} split of {store.root} has no windows (documents need at least 2 chunks)")
        self.split = split
        self._load(store, targets, context_length, hard_negatives, device, np.float32)

    @classmethod
    def of_windows(cls, store, split: str, targets: np.ndarray, context_length: int, hard_negatives: int = 0,
                   device: str | torch.device = "cpu") -> "WindowDataset":
        """Windows already known to belong to `split` (a streaming block): no check against the whole split,
        and the vectors keep the store's dtype (float16 stores are upcast per batch)."""
        ds = cls.__new__(cls)
        ds.split = split
        ds._load(store, np.asarray(targets, dtype=np.int64), context_length, hard_negatives, device,
                 store.vectors.dtype)
        return ds

    def _load(self, store, targets: np.ndarray, context_length: int, hard_negatives: int, device, dtype) -> None:
        self.T, self.K = int(context_length), int(hard_negatives)
        self.targets = targets  # (M,) store chunk ids
        self.doc = store.doc_of(targets)  # (M,)

        # The rows the windows need, each read once: whole documents when hard negatives are drawn from them,
        # else each window's own context and target. `local` maps store chunk ids into that table.
        if self.K:
            docs = np.unique(self.doc)
            self.chunks = concat_ranges(store.doc_offsets[docs], np.diff(store.doc_offsets)[docs])  # sorted ids
        else:
            back = np.minimum(store.pos_of(targets), self.T)
            self.chunks = np.unique(concat_ranges(targets - back, back + 1))
        table = np.zeros((len(self.chunks) + 1, store.dim), dtype)
        run_at = np.flatnonzero(np.diff(self.chunks, prepend=-2) != 1)  # first table row of each contiguous run
        for at, end in zip(run_at, np.append(run_at[1:], len(self.chunks))):  # one read per run of rows
            store.read_rows(int(self.chunks[at]), int(self.chunks[at]) + int(end - at), out=table[at:end])
        self.pad_row = len(self.chunks)  # index of the zero row
        local = lambda ids: np.searchsorted(self.chunks, ids)  # noqa: E731

        self.vectors = torch.from_numpy(table).to(device)  # (n_chunks + 1, D)
        # (n_chunks + 1,) keys that keep a repeat of the positive out of the negatives; none without negatives
        self.vector_key = torch.from_numpy(vector_keys(table)).to(device) if self.K else None
        # The up-to-T chunks before a target sit in the table right before it (its whole document, or its
        # window's own run of rows), so a batch's context rows are its target rows minus T..1: no (M, T) index
        # array is held (17 MB per streamed block of 65,536 windows at T = 32, and 4x that while built).
        self.target_idx = torch.from_numpy(local(targets)).to(device)  # (M,)
        doc_start = local(store.doc_offsets[self.doc])
        self.doc_start = torch.from_numpy(doc_start).to(device)  # (M,) local index of the doc's first chunk
        self.doc_len = torch.from_numpy(np.diff(store.doc_offsets)[self.doc]).to(device)  # (M,)
        self.target_pos = torch.from_numpy(store.pos_of(targets)).to(device)  # (M,) chunks before each target
        self.back = torch.arange(self.T, 0, -1, device=device)  # (T,) column j holds the chunk T - j places back
        self.doc_t = torch.from_numpy(self.doc).to(device)
        self.device = torch.device(device)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> dict:
        b = self.get_batch(torch.tensor([i]))
        return {f.name: getattr(b, f.name)[0] for f in fields(b)}

    def get_batch(self, rows, generator: torch.Generator | None = None) -> WindowBatch:
        """Windows `rows` (B,) as a WindowBatch; hard negatives drawn with `generator` (CPU)."""
        rows = torch.as_tensor(rows, dtype=torch.long).to(self.device)
        V = self.vectors
        target_idx = self.target_idx[rows]
        mask = self.back <= self.target_pos[rows].unsqueeze(1)  # (B, T) left padding masked (as context_indices)
        context_idx = torch.where(mask, target_idx.unsqueeze(1) - self.back, self.pad_row)  # (B, T)
        neg_idx, neg_mask = self.sample_negatives(rows, generator)
        return WindowBatch(
            context=V[context_idx].float(),  # (B, T, D); a float16 table is upcast here
            mask=mask,
            target=V[target_idx].float(),
            negatives=V[neg_idx].float(),  # (B, K, D)
            negatives_mask=neg_mask,
            doc=self.doc_t[rows],
        )

    def sample_negatives(self, rows: torch.Tensor, generator: torch.Generator | None = None):
        """K other chunks of each target's document -> (local idx (B, K), mask (B, K) True = real).

        Drawn without replacement (documents with fewer than K other chunks give all of them, the rest
        masked). The target's own position is skipped by construction, and a chunk whose vector equals
        the target's (a repeated sentence) is masked too, so the positive never appears.
        """
        B, K = len(rows), self.K
        if K == 0:
            return (torch.zeros(B, 0, dtype=torch.long, device=self.device),
                    torch.zeros(B, 0, dtype=torch.bool, device=self.device))
        n_other = (self.doc_len[rows] - 1).cpu()  # (B,) candidates per window
        L = int(n_other.max())
        if L <= 256:  # random keys, K smallest among the real candidates: no repeats
            keys = torch.rand(B, max(L, 1), generator=generator)
            keys[torch.arange(max(L, 1)).unsqueeze(0) >= n_other.unsqueeze(1)] = 2.0  # never before a real one
            r = keys.topk(min(K, max(L, 1)), dim=1, largest=False).indices  # (B, <=K)
            r = torch.cat([r, torch.full((B, K - r.shape[1]), L, dtype=torch.long)], 1)  # pad -> invalid
            repeat = torch.zeros(B, K, dtype=torch.bool)
        else:  # long documents: K draws with replacement, repeats masked (rare)
            r = (torch.rand(B, K, generator=generator) * n_other.unsqueeze(1)).long().sort(1).values
            repeat = torch.zeros(B, K, dtype=torch.bool)
            repeat[:, 1:] = r[:, 1:] == r[:, :-1]
        valid = ((r < n_other.unsqueeze(1)) & ~repeat).to(self.device)
        r = r.to(self.device)
        pos = self.target_pos[rows].unsqueeze(1)
        idx = self.doc_start[rows].unsqueeze(1) + r + (r >= pos).long()  # skip the target's own position
        idx = torch.where(valid, idx, self.pad_row)
        same = self.vector_key[idx] == self.vector_key[self.target_idx[rows]].unsqueeze(1)  # (B, K)
        valid &= ~same
        return torch.where(valid, idx, self.pad_row), valid


class StoreWindows:
    """Windows whose rows are read from the store when a batch is asked for: it holds only their target chunk
    ids (M,), so it costs one batch's rows whatever the store's size. Validation uses it: its windows are drawn
    at random from the split, so a table of their rows would hold up to T + 1 rows per window (20,000 windows
    at T = 32 of a 20M-chunk store: ~1 GB as float32) and grow with the store until they stop overlapping.
    A batch equals WindowDataset's for the same windows (no hard negatives): the same rows, upcast to float32.

    Args:
        store: a ConceptStore.
        split: the split the targets belong to (not checked: they come from window_subset / a subset of it).
        targets: (M,) target chunk ids.
        context_length: T.
        device: where batches are built.
    """

    def __init__(self, store, split: str, targets: np.ndarray, context_length: int,
                 device: str | torch.device = "cpu"):
        self.store, self.split, self.T, self.device = store, split, int(context_length), torch.device(device)
        self.targets = np.asarray(targets, dtype=np.int64)  # (M,)

    def __len__(self) -> int:
        return len(self.targets)

    def get_batch(self, rows, generator: torch.Generator | None = None) -> WindowBatch:
        """Windows `rows` (B,) as a WindowBatch, their rows read now (one read per contiguous run)."""
        targets = self.targets[torch.as_tensor(rows, dtype=torch.long).cpu().numpy()]  # (B,)
        ds = WindowDataset.of_windows(self.store, self.split, targets, self.T, 0, self.device)
        return ds.get_batch(torch.arange(len(targets)))
