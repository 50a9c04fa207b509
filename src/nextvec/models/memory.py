"""Successor memory: a kNN-LM (Khandelwal et al. 2020) for next-vector prediction.

The train split is a memory of (chunk -> the chunk that followed it). For a window, the memory finds the
k train chunks nearest to the last context chunk (each match also scored, at half weight, by how well the
chunk before it matches the context's second-to-last chunk), averages their successors with softmax
weights, and adds that vector to the model's `y_cos` with a gate that opens only for close matches:

    y_cos = unit(unit(model.y_cos) + weight * sigmoid((s_1 - threshold) / 0.05) * unit(sum_j w_j succ_j))

where s_1 is the best match's cosine. Text that recurs across documents (templates, boilerplate, lists,
quoted passages) is predicted from the memory; everything else from the model. Sampling works the same
way (kNN-LM's interpolation, for samples): a share sample_weight * sigmoid((s_1 - sample_threshold) / 0.05)
of the model's samples (stratified: that share of every set) is replaced by the k successors, drawn
uniformly without replacement. `y_dec` is the model's
(the memory is a retrieval aid, and the decoder output keeps the model's spread). `weight` and
`threshold` are fitted on the val split (`nextvec.models.memory_fit.fit_memory`); weight 0 is the model.

Test and val documents are never in the memory (a document is in exactly one split), so a window cannot
retrieve its own continuation.
"""

from __future__ import annotations

import numpy as np
import torch

from nextvec.models.base import Prediction, sample_from
from nextvec.models.baselines import train_chunks_with_successor
from nextvec.vecmath import unit_centroid, unit_rows

K = 8  # neighbours averaged
TAU = 0.05  # softmax temperature over match scores
PREV_WEIGHT = 0.5  # weight of the second-to-last chunk's match in the score
GATE_SHARPNESS = 0.05
TOPIC_POOL = 4  # neighbours searched per kept candidate when re-ranking by topic


class SuccessorMemory:
    """(chunk -> next chunk) pairs of a store's train split, searchable by the chunk (FAISS: exact up to
    `index.hnsw_above` keys, HNSW/IVF/IVF-PQ above, saved with the store; see nextvec.index)."""

    def __init__(self, store, k: int = K, index=None):
        from nextvec.index import store_unit_index

        self.store = store
        keys = train_chunks_with_successor(store, "the successor memory")
        self.k = min(int(k), len(keys))
        self._index = store_unit_index(store, keys, "successor-keys", index, k=self.k)

    def lookup(self, context: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """context (B, T, D), mask (B, T) -> (memory vector (B, D), unit; best match cosine (B,))."""
        succ, w, best = self.candidates(context, mask)
        return unit_rows(np.einsum("bk,bkd->bd", w, succ)), best

    def candidates(self, context: np.ndarray, mask: np.ndarray,
                   topic_weight: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The k successors (B, k, D) unit, their softmax weights (B, k) and the best match cosine (B,).

        With topic_weight > 0 the TOPIC_POOL * k chunks nearest the last one are re-ranked by their match plus
        topic_weight * the cosine of their successor to the context's unit centroid, and the best k kept: the
        successors of the last sentence's neighbours that also fit the document so far."""
        st = self.store
        last = unit_rows(context[:, -1].astype(np.float32))
        pool = min(self.k * (TOPIC_POOL if topic_weight else 1), len(self._index))
        sims, ids = self._index.search(last, pool)  # (B, pool) store ids of train chunks
        succ = unit_rows(np.asarray(st.get((ids + 1).reshape(-1)), np.float32)).reshape(len(last), pool, -1)
        if topic_weight:
            topic = unit_centroid(context, mask)
            keep = np.argsort(-(sims + topic_weight * np.einsum("bkd,bd->bk", succ, topic)), 1, kind="stable")
            keep = np.sort(keep[:, :self.k], 1)  # the best k, in the order of their last-chunk match
            sims, ids = np.take_along_axis(sims, keep, 1), np.take_along_axis(ids, keep, 1)
            succ = np.take_along_axis(succ, keep[..., None], 1)
        score = sims.astype(np.float32)
        if context.shape[1] > 1:
            prev = unit_rows(context[:, -2].astype(np.float32))
            has_prev = mask[:, -2].astype(bool)
            before = np.clip(ids - 1, 0, None)
            same = (st.doc_of(before.reshape(-1)) == st.doc_of(ids.reshape(-1))).reshape(ids.shape) & (ids > 0)
            pv = unit_rows(np.asarray(st.get(before.reshape(-1)), np.float32)).reshape(len(last), self.k, -1)
            s2 = np.einsum("bkd,bd->bk", pv, prev)
            score = score + PREV_WEIGHT * np.where(same & has_prev[:, None], s2, 0.0)
        w = np.exp((score - score.max(1, keepdims=True)) / TAU)
        w /= w.sum(1, keepdims=True)
        return succ, w, sims.max(1).astype(np.float32)


def gate(best: np.ndarray, weight: float, threshold: float) -> np.ndarray:
    """weight * sigmoid((s_1 - threshold) / 0.05): opens only for close matches."""
    return weight / (1.0 + np.exp(-(best - threshold) / GATE_SHARPNESS))


def mix_samples(samples: np.ndarray, succ: np.ndarray, best: np.ndarray, weight: float, threshold: float,
                u: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Replace a share gate(s_1) of each window's samples (B, n, D) with memory successors (weight <= 1).

    The share is stratified: exactly floor(n g) samples, and one more with probability frac(n g), so every
    set of n holds both sources in the gate's proportion. (Replacing each sample independently leaves some
    sets all model, some all memory; the energy score rewards a mixture by the distance between its two
    sources, and a one-source set forgoes it.) `u` (B, n + 1) uniform: the replaced samples are the n g
    with the lowest u[:, :n], and u[:, n] rounds. `order` (B, k) is a random permutation of the k
    successors, and sample i takes successor order[i mod k]: drawn uniformly and without replacement, as the
    kNN-successor sampler draws (repeated draws of one successor shrink the set's spread, which the energy
    score penalises). A replacement keeps the norm of the sample it replaces."""
    B, n = samples.shape[:2]
    share = n * gate(best, weight, threshold)  # (B,) expected replacements
    count = np.floor(share) + (u[:, n] < share - np.floor(share))
    take = u[:, :n].argsort(1, kind="stable").argsort(1) < count[:, None]  # (B, n): the `count` lowest draws
    j = order[:, np.arange(n) % order.shape[1]]  # (B, n)
    chosen = succ[np.arange(B)[:, None], j] * np.linalg.norm(samples, axis=-1, keepdims=True)
    return np.where(take[..., None], chosen, samples).astype(np.float32)


def combine(y_cos: np.ndarray, memory: np.ndarray, best: np.ndarray, weight: float, threshold: float) -> np.ndarray:
    """The gated mixture of the model's unit y_cos and the memory vector (see the module docstring)."""
    return unit_rows(unit_rows(y_cos) + gate(best, weight, threshold)[:, None] * memory).astype(np.float32)


class MemoryPredictor:
    """A model with a successor memory: same `predict` call as every predictor."""

    def __init__(self, model, memory: SuccessorMemory, weight: float, threshold: float, sample_weight: float = 0.0,
                 sample_threshold: float = 0.0, topic_weight: float = 0.0):
        self.model = model
        self.memory = memory
        self.weight = float(weight)
        self.threshold = float(threshold)
        self.sample_weight = float(sample_weight)
        self.sample_threshold = float(sample_threshold)
        self.topic_weight = float(topic_weight)
        self.name = f"{getattr(model, 'name', type(model).__name__)}+memory"
        # the model's context length: whoever is handed the memory (a Session, an evaluator) feeds it as many
        # vectors as the model reads
        self.context_length = getattr(getattr(model, "config", None), "context_length", None)

    def parameters(self):
        return self.model.parameters()

    def eval(self) -> "MemoryPredictor":
        self.model.eval()
        return self

    def sample(self, context: torch.Tensor, mask: torch.Tensor, n: int,
               generator: torch.Generator | None = None, **options) -> torch.Tensor:
        """The model's samples, a share sample_weight * sigmoid((s_1 - sample_threshold) / 0.05) of them
        replaced by memory successors (see mix_samples): recurring text is drawn from the memory."""
        x = sample_from(self.model, context, mask, n, generator, **options)
        if self.sample_weight == 0:
            return x
        succ, _, best = self.memory.candidates(context.detach().float().cpu().numpy(), mask.detach().cpu().numpy(),
                                               self.topic_weight)
        u = torch.rand(x.shape[0], n + 1, generator=generator).numpy()
        order = torch.rand(x.shape[0], succ.shape[1], generator=generator).argsort(1).numpy()
        y = mix_samples(x.detach().float().cpu().numpy(), succ, best, self.sample_weight, self.sample_threshold,
                        u, order)
        return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)

    def predict(self, context: torch.Tensor, mask: torch.Tensor) -> Prediction:
        p = self.model.predict(context, mask)
        if self.weight == 0:
            return p
        mem, best = self.memory.lookup(context.detach().float().cpu().numpy(), mask.detach().cpu().numpy())
        y = combine(p.y_cos.detach().float().cpu().numpy(), mem, best, self.weight, self.threshold)
        return Prediction(y_dec=p.y_dec, y_cos=torch.from_numpy(y).to(device=p.y_cos.device, dtype=p.y_cos.dtype))
