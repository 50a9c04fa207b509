"""Next-vector metrics: cosine, global retrieval (R@k, MRR), in-document rank, contrastive accuracy and
the next-vs-last margin. Every predictor, trained model or baseline, goes through the same functions.

Ranks are exact. The rank of the true next chunk among a bank of chunks is

    rank = 1 + #{others scoring higher} + 0.5 * #{others scoring exactly the same}

by cosine with the prediction, where "others" are the bank chunks whose vector is not identical to the
target's (an identical vector is the same concept: retrieving it decodes to the same text). Counting ties
as half means a degenerate prediction (all scores equal) ranks in the middle, never first.
"""

from __future__ import annotations

import numpy as np

from nextvec.data.windows import window_targets
from nextvec.errors import NextvecError
from nextvec.models.base import predict_windows
from nextvec.vecmath import cosine_rows, unit_rows

MARGIN_DEFINITION = "mean over windows of cos(y_cos, target) - cos(y_cos, context[-1]), context[-1] = the chunk right before the target"
PRIMARY_METRIC = "mrr"
_BLOCK_FLOATS = 8_000_000  # (queries x bank) scores held at once: 32 MB of float32


def _row_hashes(x: np.ndarray) -> np.ndarray:
    # identical rows -> identical hash; used only to find exact duplicate vectors
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
        hashes = np.concatenate([_row_hashes(u) for _, u in self._iter_unit(self.block_rows)])
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


def in_document_ranks(queries: np.ndarray, target_ids: np.ndarray, store) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each target among the chunks of its own document (same tie and duplicate rules).

    Returns rank (Q,) float and n_other (Q,): chunks of the document not identical to the target.
    """
    q_unit = unit_rows(np.asarray(queries, np.float32))
    target_ids = np.asarray(target_ids, dtype=np.int64)
    docs = store.doc_of(target_ids)
    rank = np.ones(len(target_ids), dtype=np.float64)
    n_other = np.zeros(len(target_ids), dtype=np.int64)
    order = np.argsort(docs, kind="stable")
    bounds = np.flatnonzero(np.diff(docs[order])) + 1
    for grp in np.split(order, bounds):  # one small matrix product per document
        a, b = store.doc_range(int(docs[grp[0]]))
        V = unit_rows(store.get(slice(a, b)))  # (L, D)
        S = q_unit[grp] @ V.T  # (m, L)
        t = target_ids[grp] - a
        st = S[np.arange(len(grp)), t][:, None]
        _, g = np.unique(_row_hashes(V), return_inverse=True)
        other = g[None, :] != g[t][:, None]  # (m, L) not a copy of the target
        rank[grp] = 1.0 + ((S > st) & other).sum(1) + 0.5 * ((S == st) & other).sum(1)
        n_other[grp] = other.sum(1)
    return rank, n_other


def score_predictions(y_dec: np.ndarray, y_cos: np.ndarray, targets: np.ndarray, store, bank: Bank,
                      rankme_target: float | None = None) -> dict:
    """Every next-vector metric for predictions of the windows whose true next chunks are `targets`.

    `rankme_target` may pass RankMe of the targets when it is already known (it depends only on them).
    """
    from nextvec.evaluate.collapse import rankme, std_ratio

    targets = np.asarray(targets, dtype=np.int64)
    if len(targets) == 0:
        raise NextvecError("no windows to evaluate: the split has no document with 2 or more chunks")
    tv = store.get(targets)
    cos = cosine_rows(y_cos, tv)
    last = cosine_rows(y_cos, store.get(targets - 1))  # context[-1] is always the chunk before the target
    rank, n_other = retrieval_ranks(y_cos, targets, bank)
    drank, _ = in_document_ranks(y_cos, targets, store)
    contrastive = 1.0 - (rank - 1.0) / np.maximum(n_other, 1)
    sr = std_ratio(y_dec, tv)
    return {
        "cosine": float(cos.mean()),
        "cosine_std": float(cos.std()),
        "cosine_p10": float(np.percentile(cos, 10)),
        "cosine_p50": float(np.percentile(cos, 50)),
        "cosine_p90": float(np.percentile(cos, 90)),
        "r@1": float((rank <= 1).mean()),
        "r@5": float((rank <= 5).mean()),
        "r@10": float((rank <= 10).mean()),
        "mrr": float((1.0 / rank).mean()),
        "mean_rank": float(rank.mean()),
        "in_doc_r@1": float((drank <= 1).mean()),
        "in_doc_mrr": float((1.0 / drank).mean()),
        "contrastive_accuracy": float(contrastive.mean()),
        "margin": float((cos - last).mean()),
        "std_ratio": sr["median"],
        "rankme_pred": rankme(y_dec),
        "rankme_target": rankme(tv) if rankme_target is None else float(rankme_target),
    }


def evaluate_predictor(predictor, store, split: str = "test", context_length: int = 5, bank: Bank | None = None,
                       batch_size: int = 512, targets: np.ndarray | None = None) -> dict:
    """All metrics of one predictor on the windows of a split; `bank` defaults to every chunk of the split.

    Returns a dict of metrics (primary: "mrr") plus name, windows, bank_size and seconds.
    """
    targets = window_targets(store, split) if targets is None else np.asarray(targets)
    bank = Bank.for_split(store, split) if bank is None else bank
    name = getattr(predictor, "name", type(predictor).__name__)
    y_dec, y_cos, sec = predict_windows({name: predictor}, store, targets, context_length, batch_size)[name]
    return {"name": name, **score_predictions(y_dec, y_cos, targets, store, bank),
            "windows": int(len(targets)), "bank_size": len(bank), "seconds": round(sec, 3)}
