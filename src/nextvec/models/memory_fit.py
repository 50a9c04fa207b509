"""Fit the successor memory's gate on the val split (the kNN-LM recipe: interpolation tuned on held-out data).

The model and the memory run once over the val windows; each (weight, threshold) of a small grid is then
scored by val cosine and val MRR. The pick maximises val MRR among the settings whose val cosine is not
below the model's own (weight 0), so the memory never trades cosine away; when no setting raises MRR the
weight stays 0 (the model alone). The sampling gate (the share of samples drawn from the memory's
successors) is fitted the same way by the val energy score of K samples (`fit_sampling`), together with
the weight of the topic in the memory's candidates (`topic_weight`): among the settings within TOPIC_TIE of
the best val energy score, which one step cannot tell apart, the most topic-aware one wins, because drift
shows only over several steps (on the val splits of four corpora it raised retention at h = 10 by
0.006-0.06). Training writes the result beside the checkpoints as memory.json (nextvec.run.folder).
"""

from __future__ import annotations

import numpy as np
import torch

from nextvec.data.windows import gather_windows, seeded_subset, select_windows
from nextvec.models.memory import SuccessorMemory, combine, mix_samples
from nextvec.scoring import K_SAMPLES, Bank, draw_samples, energy_score_np, retrieval_ranks
from nextvec.vecmath import cosine_rows, unit_rows

WEIGHTS = (0.5, 1.0, 2.0)
THRESHOLDS = (0.6, 0.7, 0.8, 0.85, 0.9)
SAMPLE_WEIGHTS = (0.25, 0.5, 0.75, 1.0)  # at most this share of samples drawn from the memory
SAMPLE_THRESHOLDS = (0.0, 0.5) + THRESHOLDS  # 0.0: the gate is open for every window (kNN-LM's fixed lambda)
SAMPLE_FIT_WINDOWS = 2000
TOPIC_WEIGHTS = (0.0, 0.5, 1.0, 2.0)  # memory candidates re-ranked by their successor's fit to the context's topic
TOPIC_TIE = 0.001  # among settings this close to the best val energy score, the most topic-aware one wins


FIT_SPLIT, FIT_WINDOWS, FIT_SEED, FIT_BATCH = "val", 20000, 0, 512  # a seeded subset of at most 20k val windows


def fit_memory(model, store, context_length: int, memory: SuccessorMemory | None = None, index=None) -> dict:
    """Grid-search the gate on (at most FIT_WINDOWS windows of) the val split; returns {weight, threshold,
    split, windows, grid: [...]}. `memory`: an already built SuccessorMemory of `store` (else one is built
    with IndexConfig `index`)."""
    split, seed, batch_size = FIT_SPLIT, FIT_SEED, FIT_BATCH
    targets, _ = select_windows(store, split, FIT_WINDOWS, seed)
    memory = memory or SuccessorMemory(store, index=index)
    y, mem, best = [], [], []
    with torch.no_grad():
        for s in range(0, len(targets), batch_size):
            ctx, mask, _ = gather_windows(store, targets[s : s + batch_size], context_length)
            y.append(model.predict(torch.from_numpy(ctx), torch.from_numpy(mask)).y_cos.float().numpy())
            m, b = memory.lookup(ctx, mask)
            mem.append(m)
            best.append(b)
    y, mem, best = np.concatenate(y), np.concatenate(mem), np.concatenate(best)
    bank = Bank.for_split(store, split)
    tv = store.get(targets)

    def score(q: np.ndarray) -> tuple[float, float]:
        rank, _ = retrieval_ranks(q, targets, bank)
        return float(cosine_rows(q, tv).mean()), float((1.0 / rank).mean())

    cos0, mrr0 = score(y)
    grid = [{"weight": 0.0, "threshold": None, "cosine": cos0, "mrr": mrr0}]
    for w in WEIGHTS:
        for th in THRESHOLDS:
            c, m = score(combine(y, mem, best, w, th))
            grid.append({"weight": w, "threshold": th, "cosine": c, "mrr": m})
    ok = [g for g in grid if g["cosine"] >= cos0]
    pick = max(ok, key=lambda g: g["mrr"])
    sampling = fit_sampling(model, store, targets, context_length, memory, seed=seed)
    return {"weight": pick["weight"], "threshold": pick["threshold"] if pick["weight"] else 0.0, "split": split,
            "windows": int(len(targets)), "val_cosine": pick["cosine"], "val_mrr": pick["mrr"],
            "model_val_cosine": cos0, "model_val_mrr": mrr0, "grid": grid, **sampling}


def fit_sampling(model, store, targets: np.ndarray, context_length: int, memory: SuccessorMemory, k: int = K_SAMPLES,
                 seed: int = 0, max_windows: int = SAMPLE_FIT_WINDOWS) -> dict:
    """Grid-search the sampling gate on (a seeded subset of) the val windows by the fair energy score of K
    samples: the same model samples and the same uniform draws for every setting, so settings differ only
    by the gate. Weight 0 (the model's own samples) is a candidate; the lowest energy score wins."""
    targets = seeded_subset(targets, max_windows, seed)
    x = draw_samples({"model": model}, store, targets, context_length, k, seed)["model"]  # (M, k, D) unit
    rng = np.random.default_rng(seed + 1)
    u, order = rng.random((len(targets), k + 1)), rng.random((len(targets), memory.k)).argsort(1)
    tv = unit_rows(store.get(targets))
    grid = [{"sample_weight": 0.0, "sample_threshold": None, "topic_weight": 0.0,
             "energy_score": float(energy_score_np(x, tv).mean())}]
    for tw in TOPIC_WEIGHTS:
        c = [memory.candidates(*gather_windows(store, targets[s : s + 4096], context_length)[:2], topic_weight=tw)
             for s in range(0, len(targets), 4096)]
        succ, _, best = (np.concatenate(a) for a in zip(*c))
        for sw in SAMPLE_WEIGHTS:
            for th in SAMPLE_THRESHOLDS:
                mixed = mix_samples(x, succ, best, sw, th, u, order)
                grid.append({"sample_weight": sw, "sample_threshold": th, "topic_weight": tw,
                             "energy_score": float(energy_score_np(mixed, tv).mean())})
    lowest = min(g["energy_score"] for g in grid)
    close = [g for g in grid if g["energy_score"] <= lowest + TOPIC_TIE]  # one step cannot tell these apart
    pick_ = max(close, key=lambda g: (g["topic_weight"], -g["energy_score"]))
    return {"sample_weight": pick_["sample_weight"], "sample_threshold": pick_["sample_threshold"] or 0.0,
            "topic_weight": pick_["topic_weight"], "val_energy_score": pick_["energy_score"],
            "model_val_energy_score": grid[0]["energy_score"], "sample_windows": int(len(targets)), "sample_grid": grid}
