"""Continuations scored against the real one: what a user of `nextvec generate` reads, measured.

A prompt is the first `prefix` chunks of a held-out document long enough for `horizon` more; every
predictor continues every prompt K times (K rollouts, each feeding its own draws back) and step h of each
rollout is scored against the document's true chunk h steps ahead. Per horizon h = 1..H:

    energy      fair energy score of the K step-h vectors (unit) against the true chunk h ahead
    retention   cosine of step h to the unit centroid of the prompt's vectors (topic retention), beside
                the real continuation's
    cos_prev    cosine of step h to the step before it (step 1: to the prompt's last chunk)
    repeats     step h decodes (nearest chunk of the train or the evaluated split, as `nextvec generate
                --allow-repeats` decodes) to the same text as an earlier step of its rollout, or its cosine to step h - 1
                exceeds 0.9 (the Large Concept Model's stopping rule). The real continuation's own rate is
                measured with its chunks decoded into the train split only (a bank without them): the share
                of repeats that the decoder's resolution makes of text that never repeats itself
    repeats as read   the same, with each step decoded as `nextvec generate` decodes by default (no-repeat:
                the best of its nearest 8 chunks not already said in the prompt or the rollout): what a
                reader meets. Its text repeats only when all 8 were said; the cosine rule is unchanged, so
                a rollout that stalls still counts

The rolled-out baselines: the kNN walk (the kNN-successor sampler fed its own draws; the K walks of a
prompt draw distinct successors at every step where the bank has them, so their spread is not understated)
and a point rollout (y_dec fed back; its K rollouts are one). Every predictor sees the same prompts.
"""

from __future__ import annotations

import numpy as np
import torch

from nextvec.data.windows import seeded_subset
from nextvec.errors import NextvecError
from nextvec.generate import NO_REPEAT_CANDIDATES
from nextvec.scoring import energy_score_np
from nextvec.models.base import sample_from, sample_rollouts
from nextvec.options import RolloutOptions
from nextvec.vecmath import unit_centroid, unit_rows

REPEAT_COS = 0.9
REFERENCE = "knn_walk"  # energy scores are reported as ratios to this predictor's
SHOWN_HORIZONS = (1, 5, 10)


def rollout_prompts(store, split: str, prefix: int, steps: int, prompts: int, seed: int) -> np.ndarray:
    """Start chunk ids of up to `prompts` documents of `split` with at least prefix + steps chunks (seeded)."""
    docs = store.split_docs(split)
    lengths = np.array([np.subtract(*store.doc_range(int(d))[::-1]) for d in docs])
    ok = docs[lengths >= prefix + steps]
    if len(ok) == 0:
        raise NextvecError(f"no {split} document has {prefix + steps} chunks for a {steps}-step rollout")
    ok = seeded_subset(ok, prompts, seed)
    return np.array([store.doc_range(int(d))[0] for d in ok])


MODES = ("sample", "point", "walk")  # how a predictor is rolled out (see `roll`)


def predictor_draw(predictor, generator: torch.Generator, point: bool = False, **options):
    """draw(context, mask, n, own) for `sample_rollouts`: the predictor's samples (told which context vectors are
    its own draws), or (point) its y_dec n times."""
    def draw(ctx, mask, n, own):
        if point:
            return predictor.predict(ctx, mask).y_dec.float()[:, None].expand(-1, n, -1)
        return sample_from(predictor, ctx, mask, n, generator, own=own, **options).float()
    return draw


def roll(predictor, mode: str, prompts: np.ndarray, steps: int, k: int, context_length: int | None,
         generator: torch.Generator) -> np.ndarray:
    """K rollouts (B, K, steps, D) of every prompt (B, L, D). mode "sample": the predictor's draws fed back;
    "point": its y_dec fed back (one rollout, repeated K times); "walk": `predictor` is a KnnSuccessorSampler
    walked as `KnnWalk` does."""
    if mode not in MODES:
        raise NextvecError(f"rollout mode {mode!r} is not one of {', '.join(MODES)}")
    draw = KnnWalk(predictor, k, generator).draw if mode == "walk" else predictor_draw(predictor, generator, mode == "point")
    with torch.no_grad():
        g = sample_rollouts(torch.from_numpy(prompts), steps, 1 if mode == "point" else k, context_length, draw)
    return np.broadcast_to(g.numpy(), (len(prompts), k, steps, prompts.shape[-1]))


class KnnWalk:
    """The kNN-successor sampler fed its own draws. `draw` keeps the K walks of one prompt apart: rows come
    in groups of K (one group per prompt), and each walk takes a successor no earlier walk of its group took
    at this step (from its 2K nearest train chunks, in random order), falling back to its first candidate."""

    name = REFERENCE

    def __init__(self, sampler, k: int, generator: torch.Generator):
        self.sampler, self.k, self.gen = sampler, k, generator

    def draw(self, ctx: torch.Tensor, mask: torch.Tensor, n: int, own: int = 0) -> torch.Tensor:
        if n > 1:  # one shared context per prompt: n draws without replacement
            return self.sampler.sample(ctx, mask, n, self.gen).float()
        ids = self.sampler.successor_ids(ctx, 2 * self.k)  # (B*K, c)
        order = torch.rand(ids.shape, generator=self.gen).argsort(1).numpy()
        ids = np.take_along_axis(ids, order, 1)
        chosen = np.empty(len(ids), np.int64)
        for g in range(0, len(ids), self.k):
            taken: set[int] = set()
            for r in range(g, min(g + self.k, len(ids))):
                free = [i for i in ids[r] if int(i) not in taken]
                chosen[r] = free[0] if free else ids[r, 0]
                taken.add(int(chosen[r]))
        return torch.from_numpy(np.asarray(self.sampler.store.get(chosen), np.float32))[:, None]


def repeats(gen: np.ndarray, texts: list[list[str]]) -> np.ndarray:
    """(R, S) bool: step s repeats an earlier step's decoded text, or has cosine > 0.9 to step s - 1."""
    u = unit_rows(gen.reshape(-1, gen.shape[-1])).reshape(gen.shape)
    close = np.zeros(gen.shape[:2], bool)
    close[:, 1:] = np.einsum("bsd,bsd->bs", u[:, 1:], u[:, :-1]) > REPEAT_COS
    seen = np.array([[t in row[:s] for s, t in enumerate(row)] for row in texts])
    return close | seen


def decode_nearest(u: np.ndarray, indexes: list, k: int = 1) -> np.ndarray:
    """Store ids of the k nearest chunks (by cosine, best first) to each unit row over several indexes:
    (N, D) -> (N, k)."""
    found = [ix.search(u, k) for ix in indexes]
    scores = np.concatenate([s for s, _ in found], 1)
    ids = np.concatenate([i for _, i in found], 1)
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ids, best, 1)


def as_read(candidates: list[list[list[str]]], said: list[list[str]]) -> list[list[str]]:
    """Each rollout's steps decoded without repeats: step s takes its first candidate not said before (in
    `said`, the rollout's prompt, or an earlier step), its first candidate when every one was."""
    out = []
    for cands, prompt in zip(candidates, said):
        seen, row = set(prompt), []
        for c in cands:
            text = next((t for t in c if t not in seen), c[0])
            seen.add(text)
            row.append(text)
        out.append(row)
    return out


def score_continuations(gen: np.ndarray, truth: np.ndarray, centroid: np.ndarray, last: np.ndarray,
                        texts: list[list[str]], read: list[list[str]] | None = None) -> dict:
    """Per-horizon scores of rollouts gen (B, K, S, D) against truth (B, S, D) unit; `centroid` (B, D) the
    prompts' unit centroids, `last` (B, D) their last chunks, `texts` the decoded steps of each of the B * K
    rollouts (nearest chunk), `read` the same decoded without repeats (see `as_read`). The real
    continuation is scored by the same function (K = 1, gen = truth)."""
    B, K, S, D = gen.shape
    u = unit_rows(gen.reshape(-1, D)).reshape(B, K, S, D)
    prev = np.concatenate([np.broadcast_to(unit_rows(last)[:, None, None], (B, K, 1, D)), u[:, :, :-1]], 2)
    rep = repeats(gen.reshape(B * K, S, D), texts).reshape(B, K, S)
    rep_read = repeats(gen.reshape(B * K, S, D), read if read is not None else texts).reshape(B, K, S)
    return {
        "energy": [float(energy_score_np(np.ascontiguousarray(u[:, :, h]), truth[:, h]).mean()) for h in range(S)],
        "retention": (np.einsum("bksd,bd->s", u, centroid) / (B * K)).tolist(),
        "cos_prev": (np.einsum("bksd,bksd->s", u, prev) / (B * K)).tolist(),
        "repeats": rep.mean((0, 1)).tolist(),
        "repeat_rate": float(rep.mean()),
        "repeats_read": rep_read.mean((0, 1)).tolist(),
        "repeat_rate_read": float(rep_read.mean()),
        "example": (read if read is not None else texts)[0],
    }


def evaluate_rollouts(predictors: dict, store, options: RolloutOptions | None = None) -> dict:
    """The `rollout` section of `nextvec evaluate`. `predictors`: {name: (predictor, context_length, mode)},
    mode one of MODES (see `roll`). The kNN walk is added as the reference."""
    from nextvec.config import IndexConfig
    from nextvec.index import store_unit_index

    o = options or RolloutOptions()
    split, horizon, prefix, k, seed = o.split, o.horizon, o.prefix, o.k, o.seed
    start = rollout_prompts(store, split, prefix, horizon, o.prompts, seed)
    D = store.dim
    prompt = np.stack([store.get(slice(s, s + prefix)) for s in start]).astype(np.float32)  # (B, P, D)
    truth = unit_rows(np.stack([store.get(slice(s + prefix, s + prefix + horizon)) for s in start]).astype(np.float32))
    centroid = unit_centroid(prompt)
    exact = IndexConfig(hnsw_above=IndexConfig().approx_above)  # decoded in batches: exact search is fast
    indexes = [store_unit_index(store, store.split_chunks(s), f"split-{s}", exact) for s in dict.fromkeys(("train", split))]

    said = [store.texts(range(s, s + prefix)) for s in start]

    def scored(g: np.ndarray, banks: list) -> dict:  # g (B, K, S, D), decoded into `banks`
        ids = decode_nearest(unit_rows(g.reshape(-1, D)), banks, NO_REPEAT_CANDIDATES)  # (B*K*S, 8)
        cands = np.array(store.texts(ids.reshape(-1)), dtype=object).reshape(-1, horizon, ids.shape[1]).tolist()
        read = as_read(cands, [said[r // g.shape[1]] for r in range(len(cands))])
        return score_continuations(g, truth, centroid, prompt[:, -1], [[c[0] for c in row] for row in cands], read)

    runs = dict(predictors)
    if o.knn_walk:
        from nextvec.models.samplers import KnnSuccessorSampler

        runs[REFERENCE] = (KnnSuccessorSampler(store, k=k), 1, "walk")
    out = {name: scored(roll(pred, mode, prompt, horizon, k, T, torch.Generator().manual_seed(seed + 1000 * i)), indexes)
           for i, (name, (pred, T, mode)) in enumerate(runs.items())}
    # the real continuation, its repeats decoded the same way but without its own chunks (train split only):
    # the scale of repeats that come from the decoder's resolution rather than from the text
    real = scored(truth[:, None], indexes[:1])
    return {"split": split, "prompts": int(len(start)), "prefix": prefix, "horizon": horizon, "k": k,
            "repeat_cos": REPEAT_COS, "reference": REFERENCE if o.knn_walk else None,
            "real": {key: real[key] for key in ("retention", "cos_prev", "repeats", "repeat_rate", "repeats_read",
                                                "repeat_rate_read")},
            "predictors": out}


def shown_horizons(horizon: int) -> list[int]:
    """The horizons a table shows: 1, 5, 10 (those within H) and H."""
    return sorted({h for h in SHOWN_HORIZONS if h <= horizon} | {horizon})


def energy_ratios(result: dict) -> dict:
    """{name: [energy at h / the reference's energy at h]} (empty without a reference)."""
    ref = result["predictors"].get(result.get("reference") or "")
    if ref is None:
        return {}
    return {n: [e / r for e, r in zip(p["energy"], ref["energy"])] for n, p in result["predictors"].items()}


def format_rollout(result: dict) -> str:
    """One row per predictor (and the real continuation): retention, energy score and its ratio to the kNN
    walk's, cosine to the previous step at the shown horizons, and the repeat rate over all steps."""
    hs = shown_horizons(result["horizon"])
    ratios = energy_ratios(result)
    col = lambda xs, fmt: " / ".join(fmt.format(xs[h - 1]) for h in hs)  # noqa: E731
    hdr = "h = " + " / ".join(map(str, hs))
    lines = [f"continuations: {result['prompts']} {result['split']} documents, the first {result['prefix']} chunks "
             f"as the prompt, K = {result['k']} rollouts of {result['horizon']} steps each, step h scored against "
             f"the true chunk h ahead (retention = cosine to the prompt's unit centroid; repeat = same decoded text "
             f"as an earlier step, or cosine > {result['repeat_cos']} to the previous step; decoded to the nearest "
             f"chunk, and as read: as `generate` decodes, the best of the nearest 8 not already said)",
             f"| predictor | retention {hdr} | energy score {hdr} | vs {result.get('reference')} | cos to previous "
             f"| repeats | repeats as read |", "|---|---|---|---|---|---|---|"]
    real = result["real"]
    lines.append(f"| real continuation | {col(real['retention'], '{:.3f}')} | - | - | {col(real['cos_prev'], '{:.3f}')} | "
                 f"{real['repeat_rate']:.1%} (decoded into train) | {real.get('repeat_rate_read', float('nan')):.1%} |")
    for name, p in result["predictors"].items():
        r = col(ratios[name], "{:.3f}") if name in ratios else "-"
        lines.append(f"| {name} | {col(p['retention'], '{:.3f}')} | {col(p['energy'], '{:.4f}')} | {r} | "
                     f"{col(p['cos_prev'], '{:.3f}')} | {p['repeat_rate']:.1%} | {p.get('repeat_rate_read', float('nan')):.1%} |")
    return "\n".join(lines)


def run_rollout_predictors(model, memory, context_length: int) -> dict:
    """The rollouts `nextvec evaluate` scores for one run: its default sampler (the model with its successor
    memory, when it has one), the model alone, and the model's point rollout (y_dec fed back). A point-head
    model has only the point rollout."""
    if getattr(getattr(model, "config", None), "head", "point") == "point":
        return {"model (point)": (model, context_length, "point")}
    out = {} if memory is None else {"model+memory": (memory, context_length, "sample")}
    return {**out, "model": (model, context_length, "sample"), "model (point)": (model, context_length, "point")}
