"""Distribution-level evaluation: are a predictor's samples good draws of the next vector?

For every predictor (point predictors repeat their point) K samples are drawn per window and scored
against the true next vector (all on unit vectors):

    energy_score   fair energy score (Gneiting & Raftery 2007), lower is better; a point mass scores
                   the distance to the target
    cos_one        cosine of one sample to the target
    cos_mean       cosine of the mean of the K samples
    cos_best       best-of-K cosine

and the set of first samples is compared with the set of real next vectors ("realism"):

    pairwise       mean pairwise cosine within the set (a point model huddled on one direction: high)
    mean_dir       mean cosine to the train mean direction
    nearest_train  mean cosine to the nearest train-split chunk (the LCM paper's round-trip gap)
    rankme         effective rank (Garrido et al. 2023)
    frechet        Frechet distance between the Gaussians fitted to the set and to the real vectors
                   (Heusel et al. 2017); the real row shows the split-half distance (the noise floor)
"""

from __future__ import annotations

import numpy as np

from nextvec.evaluate.collapse import rankme
from nextvec.scoring import K_SAMPLES, draw_samples, energy_score_np
from nextvec.vecmath import unit_rows

REALISM_ROWS = 2000  # rows of a set used for the pairwise and nearest-train statistics
DIST_KEYS = ("energy_score", "cos_one", "cos_mean", "cos_best", "pairwise", "mean_dir", "nearest_train",
             "rankme", "frechet")


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2) of row sets (N, D), (M, D)."""
    mx, my = x.mean(0, dtype=np.float64), y.mean(0, dtype=np.float64)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(sx)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S_x^1/2
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sy @ root), 0, None)).sum()
    return float(((mx - my) ** 2).sum() + np.trace(sx) + np.trace(sy) - 2 * cross)


class Realism:
    """Statistics of a set of unit vectors beside the real next vectors': train mean direction and a
    nearest-neighbour index over the train split."""

    def __init__(self, store, real: np.ndarray, seed: int = 0):
        from nextvec.config import IndexConfig
        from nextvec.index import store_unit_index

        train = store.split_chunks("train")
        self.mean_dir = unit_rows(np.asarray(store.mean, np.float32)[None])[0]
        # exact up to index.approx_above chunks: a statistic, searched in batches (no single-query latency)
        self.index = store_unit_index(store, train, "train", IndexConfig(hnsw_above=IndexConfig().approx_above))
        self.rng = np.random.default_rng(seed)
        self.real = unit_rows(real)
        half = self.rng.permutation(len(self.real))
        self.floor = frechet_distance(self.real[half[::2]], self.real[half[1::2]]) if len(real) > 3 else float("nan")

    def _rows(self, x: np.ndarray) -> np.ndarray:
        return x if len(x) <= REALISM_ROWS else x[np.sort(self.rng.choice(len(x), REALISM_ROWS, replace=False))]

    def stats(self, x: np.ndarray, is_real: bool = False) -> dict:
        x = unit_rows(x)
        sub = self._rows(x)
        gram = sub @ sub.T
        n = len(sub)
        pairwise = float((gram.sum() - np.trace(gram)) / max(n * (n - 1), 1))
        nearest, _ = self.index.search(sub, 1)
        return {"pairwise": pairwise, "mean_dir": float((x @ self.mean_dir).mean()),
                "nearest_train": float(nearest[:, 0].mean()), "rankme": rankme(x),
                "frechet": self.floor if is_real else frechet_distance(x, self.real)}


def score_samples(samples: np.ndarray, real: np.ndarray, realism: Realism) -> dict:
    """Accuracy and realism of unit samples (M, K, D) for unit targets (M, D)."""
    real = unit_rows(real)
    cos = np.einsum("mkd,md->mk", samples, real)
    mean = unit_rows(samples.mean(1))
    return {"energy_score": float(energy_score_np(samples, real).mean()), "cos_one": float(cos[:, 0].mean()),
            "cos_mean": float(np.einsum("md,md->m", mean, real).mean()), "cos_best": float(cos.max(1).mean()),
            **realism.stats(samples[:, 0])}


def evaluate_distributions(predictors: dict, store, targets: np.ndarray, context_length: int,
                           k: int = K_SAMPLES, seed: int = 0) -> dict:
    """The `distribution` section of `nextvec evaluate`: a row per predictor and the real vectors' row."""
    real = np.asarray(store.get(targets), np.float32)
    realism = Realism(store, real, seed)
    samples = draw_samples(predictors, store, targets, context_length, k, seed)
    rows = [{"name": "real next vectors", **realism.stats(real, is_real=True)}]
    rows += [{"name": n, **score_samples(s, real, realism)} for n, s in samples.items()]
    for r in rows[1:]:
        r["verdict"] = realism_verdict(r, rows[0])
    return {"k": k, "windows": int(len(targets)), "seed": seed, "rows": rows}


def realism_verdict(row: dict, real: dict) -> str:
    """Judged against the real next vectors' own statistics (the thresholds of issue 14's realism target):
    realistic = pairwise and mean-direction cosines within 0.05 of the real ones and RankMe >= 0.8 of theirs;
    collapsed = pairwise gap > half of the room above the real value, or RankMe < 0.25 of theirs."""
    gap = (row["pairwise"] - real["pairwise"]) / max(1e-6, 1 - real["pairwise"])
    rank = row["rankme"] / max(real["rankme"], 1e-6)
    if gap > 0.5 or rank < 0.25:
        return "collapsed"
    if abs(row["pairwise"] - real["pairwise"]) <= 0.05 and abs(row["mean_dir"] - real["mean_dir"]) <= 0.05 \
            and rank >= 0.8:
        return "realistic"
    return "partly realistic"


def format_distribution(result: dict) -> str:
    """The distribution section as a Markdown table."""
    head = ["predictor", "energy score", "cos 1 sample", f"cos mean of {result['k']}", f"best of {result['k']}",
            "pairwise cos", "cos to mean dir", "cos to nearest train", "RankMe", "Frechet", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        cells = [r["name"]] + [f"{r[key]:.3f}" if key in r else "-" for key in DIST_KEYS[:-2]]
        cells += [f"{r['rankme']:.0f}", f"{r['frechet']:.3f}", r.get("verdict", "-")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
