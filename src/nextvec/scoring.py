"""How a predicted vector is scored against the true one, below every user of the scores: the rank of the
true chunk among a bank of chunks (evaluation's retrieval metrics, the successor memory's fit) and the fair
energy score of K samples (evaluation's distribution tables, the sampling gate's fit, the rollouts)."""

from __future__ import annotations

import numpy as np
import torch

from nextvec.data.windows import gather_windows
from nextvec.errors import NextvecError
from nextvec.models.base import sample_from
from nextvec.options import K_SAMPLES
from nextvec.vecmath import unit_rows

_BLOCK_FLOATS = 8_000_000  # (queries x bank) scores held at once: 32 MB of float32


def row_hashes(x: np.ndarray) -> np.ndarray:
    """A hash per row: identical rows hash alike (finds exact duplicate vectors)."""
    x = np.ascontiguousarray(x)
    return np.fromiter((hash(r.tobytes()) for r in x), dtype=np.int64, count=len(x))


class Bank:
    """The candidate chunks for retrieval: store ids, their unit vectors, and exact-duplicate groups.

    Unit vectors are cached in memory when they fit in ~128 MB, otherwise streamed from the store in
    blocks, so a bank over a whole large store costs no more memory than one block.
    """

    def __init__(self, store, ids: np.ndarray, cache_floats: int = 32_000_000):
        self.store = store
        self.ids = np.asarray(ids, dtype=np.int64)
        if self.ids.ndim != 1 or len(self.ids) == 0:
            raise NextvecError("the retrieval bank is empty: the split has no chunks")
        self.dim = store.dim
        self._unit = None
        self.block_rows = max(1, cache_floats // self.dim) if len(self) * self.dim > cache_floats else len(self)
        if len(self) * self.dim <= cache_floats:
            self._unit = unit_rows(store.get(self.ids))
        hashes = np.concatenate([row_hashes(u) for _, u in self._iter_unit(self.block_rows)])
        _, self.group, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        self.group_size = counts[self.group]  # (N,) how many bank rows share this row's vector
        self._group_order = np.argsort(self.group, kind="stable")
        self._group_start = np.concatenate([[0], np.cumsum(counts)])
        order = np.argsort(self.ids, kind="stable")
        self._sorted_ids, self._sorted_rows = self.ids[order], order

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def for_split(cls, store, split: str | None) -> "Bank":
        """Every chunk of a split (context chunks included), or of the whole store when split is None."""
        return cls(store, np.arange(len(store)) if split is None else store.split_chunks(split))

    def _iter_unit(self, rows: int):
        for s in range(0, len(self), rows):
            if self._unit is not None:
                yield s, self._unit[s:s + rows]
            else:
                yield s, unit_rows(self.store.get(self.ids[s:s + rows]))

    def rows_of(self, store_ids: np.ndarray) -> np.ndarray:
        """Bank row of each store id, -1 where the chunk is not in the bank."""
        store_ids = np.asarray(store_ids, dtype=np.int64)
        pos = np.clip(np.searchsorted(self._sorted_ids, store_ids), 0, len(self) - 1)
        return np.where(self._sorted_ids[pos] == store_ids, self._sorted_rows[pos], -1)

    def members(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For bank rows (Q,) (-1 allowed): flat (query index, member row) pairs of each row's duplicate group."""
        rows = np.asarray(rows)
        q = np.flatnonzero(rows >= 0)
        g = self.group[rows[q]]
        starts, sizes = self._group_start[g], self._group_start[g + 1] - self._group_start[g]
        qi = np.repeat(q, sizes)
        offs = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return qi, self._group_order[np.repeat(starts, sizes) + offs]


def retrieval_ranks(queries: np.ndarray, target_ids: np.ndarray, bank: Bank) -> tuple[np.ndarray, np.ndarray]:
    """Exact rank of each target among the bank by cosine with its query.

    Args:
        queries: (Q, D) predictions (normalised here).  target_ids: (Q,) store ids of the true chunks.
    Returns:
        rank (Q,) float (1 = best; ties count half), n_other (Q,) number of bank rows not identical to the target.
    """
    q_unit = unit_rows(np.asarray(queries, np.float32))
    t_unit = unit_rows(bank.store.get(np.asarray(target_ids)))
    rows = bank.rows_of(target_ids)
    s_t = np.einsum("qd,qd->q", q_unit, t_unit)  # (Q,) the target's score
    greater = np.zeros(len(q_unit), dtype=np.float64)
    ties = np.zeros(len(q_unit), dtype=np.float64)
    qi_all, mem_all = bank.members(rows)  # the target's duplicate group: excluded from both counts
    q_rows = max(1, _BLOCK_FLOATS // min(len(bank), bank.block_rows))
    for c0, u in bank._iter_unit(bank.block_rows):  # bank outer: a streamed bank is read once
        for q0 in range(0, len(q_unit), q_rows):
            q1 = min(q0 + q_rows, len(q_unit))
            st = s_t[q0:q1, None]
            S = q_unit[q0:q1] @ u.T  # (q, n) cosine of each query with each bank row
            greater[q0:q1] += (S > st).sum(1)
            ties[q0:q1] += (S == st).sum(1)
            sel = (qi_all >= q0) & (qi_all < q1) & (mem_all >= c0) & (mem_all < c0 + len(u))
            qi, mem = qi_all[sel] - q0, mem_all[sel] - c0
            s_mem = S[qi, mem]
            greater[q0:q1] -= np.bincount(qi, weights=s_mem > st[qi, 0], minlength=q1 - q0)
            ties[q0:q1] -= np.bincount(qi, weights=s_mem == st[qi, 0], minlength=q1 - q0)
    n_other = len(bank) - np.where(rows >= 0, bank.group_size[np.clip(rows, 0, None)], 0)
    return 1.0 + greater + 0.5 * ties, n_other


def energy_score_np(samples: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Fair energy score per row of unit samples (M, K, D) against unit targets (M, D) -> (M,)."""
    from nextvec.models.heads import fair_energy_score

    return fair_energy_score(torch.from_numpy(samples), torch.from_numpy(target)).numpy()


def draw_samples(predictors: dict, store, targets: np.ndarray, context_length: int, k: int = K_SAMPLES,
                 seed: int = 0, batch_size: int = 256) -> dict:
    """{name: unit samples (M, k, D) float32} of every predictor on the same windows, seeded."""
    out = {n: [] for n in predictors}
    gens = {n: torch.Generator().manual_seed(seed) for n in predictors}
    with torch.no_grad():
        for s in range(0, len(targets), batch_size):
            ctx, mask, _ = gather_windows(store, targets[s:s + batch_size], context_length)
            ctx_t, mask_t = torch.from_numpy(ctx), torch.from_numpy(mask)
            for name, p in predictors.items():
                x = sample_from(p, ctx_t, mask_t, k, gens[name]).float().cpu().numpy()
                out[name].append(unit_rows(x.reshape(-1, x.shape[-1])).reshape(x.shape))
    return {n: np.concatenate(v) for n, v in out.items()}
