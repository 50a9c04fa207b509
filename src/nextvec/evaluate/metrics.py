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
from nextvec.scoring import Bank, retrieval_ranks, row_hashes
from nextvec.vecmath import cosine_rows, unit_rows

MARGIN_DEFINITION = "mean over windows of cos(y_cos, target) - cos(y_cos, context[-1]), context[-1] = the chunk right before the target"
PRIMARY_METRIC = "mrr"
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
        _, g = np.unique(row_hashes(V), return_inverse=True)
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
