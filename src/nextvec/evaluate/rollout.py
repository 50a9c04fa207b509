"""Rollout evaluation: continue held-out documents for several steps and watch for drift and repeats.

From the first `prefix` real chunks of each of up to `prompts` held-out documents the predictor generates
`steps` vectors, feeding each one back as context: the point rollout feeds y_dec, the sampled rollout one
sample per step. Per step we report the cosine of the generated vector to the document's true chunk at
that step (and, sampled, of the mean of K samples drawn at that step), the set's realism (pairwise cosine,
cosine to the train mean direction and to the nearest train chunk, beside the true chunks' own), and
repeats: a step repeats when it decodes (nearest chunk of the train or the evaluated split, as `nextvec
generate` decodes) to the same text as an earlier step of the same rollout, or its cosine to the previous
step exceeds 0.9 (the Large Concept Model's stopping rule).
"""

from __future__ import annotations

import numpy as np
import torch

from nextvec.data.windows import seeded_subset
from nextvec.errors import NextvecError
from nextvec.evaluate.distribution import K_SAMPLES, Realism
from nextvec.models.base import autoregress, sample_from
from nextvec.vecmath import unit_rows

REPEAT_COS = 0.9


def rollout_prompts(store, split: str, prefix: int, steps: int, prompts: int, seed: int) -> np.ndarray:
    """Start chunk ids of up to `prompts` documents of `split` with at least prefix + steps chunks (seeded)."""
    docs = store.split_docs(split)
    lengths = np.array([np.subtract(*store.doc_range(int(d))[::-1]) for d in docs])
    ok = docs[lengths >= prefix + steps]
    if len(ok) == 0:
        raise NextvecError(f"no {split} document has {prefix + steps} chunks for a {steps}-step rollout")
    ok = seeded_subset(ok, prompts, seed)
    return np.array([store.doc_range(int(d))[0] for d in ok])


def roll(predictor, start: np.ndarray, store, prefix: int, steps: int, T: int, sampled: bool, k: int,
         seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All rollouts at once: generated (B, steps, D) raw vectors and (B, steps, D) unit means of the K
    samples drawn at each step (sampled) or the unit point (point)."""
    gen = torch.Generator().manual_seed(seed)
    seq = torch.from_numpy(np.stack([store.get(slice(s, s + prefix)) for s in start]).astype(np.float32))
    means = []

    def next_vector(ctx, mask):
        if sampled:  # feed back the first of k draws; score the mean of all k too
            draws = sample_from(predictor, ctx, mask, k, gen).float()  # (B, k, D)
            means.append(unit_rows(unit_rows(draws.numpy()).mean(1)))
            return draws[:, 0]
        y = predictor.predict(ctx, mask).y_dec.float()  # (B, D)
        means.append(unit_rows(y.numpy()))
        return y

    with torch.no_grad():
        out = list(autoregress(seq, steps, T, next_vector))
    return torch.stack(out, 1).numpy(), np.stack(means, 1)


def repeats(gen: np.ndarray, texts: list[list[str]]) -> np.ndarray:
    """(B, S) bool: step s repeats an earlier step's decoded text, or has cosine > 0.9 to step s - 1."""
    u = unit_rows(gen.reshape(-1, gen.shape[-1])).reshape(gen.shape)
    close = np.zeros(gen.shape[:2], bool)
    close[:, 1:] = np.einsum("bsd,bsd->bs", u[:, 1:], u[:, :-1]) > REPEAT_COS
    seen = np.array([[t in row[:s] for s, t in enumerate(row)] for row in texts])
    return close | seen


def decode_nearest(u: np.ndarray, indexes: list) -> np.ndarray:
    """Store id of the nearest chunk (by cosine) to each unit row over several indexes (N, D) -> (N,)."""
    found = [ix.search(u, 1) for ix in indexes]
    scores = np.stack([s[:, 0] for s, _ in found], 1)
    ids = np.stack([i[:, 0] for _, i in found], 1)
    return ids[np.arange(len(u)), scores.argmax(1)]


def score_rollout(gen: np.ndarray, means: np.ndarray, truth: np.ndarray, store, realism: Realism,
                  split_index) -> dict:
    """Per-step metrics and the rollout-level repeat rate / distinct sentences of one mode. Steps are decoded
    like `nextvec generate` does: to the nearest chunk of the train split or of the evaluated split."""
    B, S, D = gen.shape
    u = unit_rows(gen.reshape(-1, D)).reshape(B, S, D)
    ids = decode_nearest(u.reshape(-1, D), [realism.index, split_index])
    texts = np.array(store.texts(ids), dtype=object).reshape(B, S).tolist()
    rep = repeats(gen, texts)
    per_step = []
    for s in range(S):
        stats = realism.stats(u[:, s])
        per_step.append({"step": s + 1, "cos_truth": float(np.einsum("bd,bd->b", u[:, s], truth[:, s]).mean()),
                         "cos_truth_mean_k": float(np.einsum("bd,bd->b", means[:, s], truth[:, s]).mean()),
                         "repeat_rate": float(rep[:, s].mean()),
                         **{k: stats[k] for k in ("pairwise", "mean_dir", "nearest_train")}})
    return {"repeat_rate": float(rep.mean()), "distinct_per_rollout": float(np.mean([len(set(r)) for r in texts])),
            "steps": per_step, "example": texts[0]}


def evaluate_rollouts(model, store, split: str = "test", steps: int = 10, prompts: int = 100, prefix: int = 5,
                      k: int = K_SAMPLES, seed: int = 0, context_length: int | None = None) -> dict:
    """The `rollout` section of `nextvec evaluate`: point and sampled modes side by side."""
    from nextvec.session import resolve_context_length

    T = resolve_context_length(model, context_length)
    start = rollout_prompts(store, split, prefix, steps, prompts, seed)
    truth = unit_rows(np.stack([store.get(slice(s + prefix, s + prefix + steps)) for s in start]).reshape(-1, store.dim))
    truth = truth.reshape(len(start), steps, -1)
    realism = Realism(store, truth.reshape(-1, store.dim), seed)
    real_steps = [{k: v for k, v in realism.stats(truth[:, s]).items() if k in ("pairwise", "mean_dir", "nearest_train")}
                  for s in range(steps)]
    from nextvec.index import store_unit_index

    split_index = store_unit_index(store, store.split_chunks(split), f"split-{split}")
    modes = {}
    for mode in ("point", "sampled"):
        gen, means = roll(model, start, store, prefix, steps, T, mode == "sampled", k, seed)
        modes[mode] = score_rollout(gen, means, truth, store, realism, split_index)
    return {"split": split, "prompts": int(len(start)), "prefix": prefix, "steps": steps, "k": k,
            "repeat_cos": REPEAT_COS, "real": real_steps, "modes": modes}


def format_rollout(result: dict) -> str:
    """Per-step table of both modes, then the repeat rate and distinct sentences per rollout."""
    lines = [f"rollouts: {result['prompts']} {result['split']} documents, {result['prefix']} real sentences then "
             f"{result['steps']} generated steps (repeat = same decoded text as an earlier step, or cosine > "
             f"{result['repeat_cos']} to the previous step)",
             "| step | mode | cos to truth | cos mean of K | pairwise (real) | mean dir (real) | nearest train (real) | repeats |",
             "|---|---|---|---|---|---|---|---|"]
    for s in range(result["steps"]):
        real = result["real"][s]
        for mode, m in result["modes"].items():
            r = m["steps"][s]
            lines.append(f"| {s + 1} | {mode} | {r['cos_truth']:.3f} | {r['cos_truth_mean_k']:.3f} | "
                         f"{r['pairwise']:.3f} ({real['pairwise']:.3f}) | {r['mean_dir']:.3f} ({real['mean_dir']:.3f}) | "
                         f"{r['nearest_train']:.3f} ({real['nearest_train']:.3f}) | {r['repeat_rate']:.0%} |")
    for mode, m in result["modes"].items():
        lines.append(f"{mode}: repeat rate {m['repeat_rate']:.1%}, distinct sentences per rollout "
                     f"{m['distinct_per_rollout']:.1f} of {result['steps']}")
    return "\n".join(lines)
