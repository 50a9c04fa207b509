"""Collapse measures: does the predictor spread its outputs like real next vectors, or shrink toward
the mean / onto a low-rank subspace?

All take plain (N, D) arrays. Dimensions where the targets never vary (MiniLM has three dimensions that
are always exactly 0) have no meaningful std ratio: they are left out and counted, never divided by.
"""

from __future__ import annotations

import numpy as np

from nextvec.vecmath import unit_rows


def _zero_std_tol(std: np.ndarray) -> float:
    # a dimension counts as constant when its std is below a millionth of the largest one
    return float(max(std.max(initial=0.0) * 1e-6, 1e-12))


def std_ratio(pred: np.ndarray, target: np.ndarray) -> dict:
    """Per-dimension std of predictions / std of targets over the rows, constant target dims excluded.

    Returns median, p10, p90 and mean of the ratio, the per-dim ratios (`per_dim`, NaN on excluded
    dims), and `zero_std_dims`: how many target dimensions are constant.
    """
    ps = np.asarray(pred).std(0, dtype=np.float64)  # float64 accumulation without a float64 copy
    ts = np.asarray(target).std(0, dtype=np.float64)
    ok = ts > _zero_std_tol(ts)
    ratio = np.full(ts.shape, np.nan)
    ratio[ok] = ps[ok] / ts[ok]
    r = ratio[ok]
    if len(r) == 0:
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan"), "mean": float("nan"),
                "per_dim": ratio, "zero_std_dims": int((~ok).sum())}
    return {"median": float(np.median(r)), "p10": float(np.percentile(r, 10)), "p90": float(np.percentile(r, 90)),
            "mean": float(r.mean()), "per_dim": ratio, "zero_std_dims": int((~ok).sum())}


def moment_matching(target: np.ndarray, y_dec: np.ndarray, y_cos: np.ndarray) -> dict:
    """First and second moments of the targets vs each prediction head.

    For each head: std-ratio summary (median, p10, p90), distance between the mean vectors
    (L2, and relative to the norm of the target mean) and the cosine between the mean vectors.
    """
    t_mean = np.asarray(target).mean(0, dtype=np.float64)
    out = {"target_mean_norm": float(np.linalg.norm(t_mean)),
           "target_std_mean": float(np.asarray(target).std(0, dtype=np.float64).mean())}
    for head, y in (("y_dec", y_dec), ("y_cos", y_cos)):
        y_mean = np.asarray(y).mean(0, dtype=np.float64)
        sr = std_ratio(y, target)
        dist = float(np.linalg.norm(y_mean - t_mean))
        denom = np.linalg.norm(y_mean) * np.linalg.norm(t_mean)
        out[head] = {
            "std_ratio_median": sr["median"], "std_ratio_p10": sr["p10"], "std_ratio_p90": sr["p90"],
            "mean_distance": dist,
            "mean_distance_rel": dist / max(float(np.linalg.norm(t_mean)), 1e-12),
            "mean_cosine": float(t_mean @ y_mean / denom) if denom > 0 else 0.0,
            "std_ratio_per_dim": sr["per_dim"],
        }
    out["zero_std_dims"] = std_ratio(y_dec, target)["zero_std_dims"]
    return out


def rankme(x: np.ndarray, eps: float = 1e-7) -> float:
    """Effective rank: exp of the entropy of the normalised singular values.

    RankMe, Garrido et al. 2023, "RankMe: Assessing the downstream performance of pretrained
    self-supervised representations by their rank": p_k = sigma_k / ||sigma||_1 + eps,
    RankMe = exp(-sum_k p_k log p_k). Between 1 (all rows on one line) and min(N, D).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return 0.0
    # singular values from the (D, D) Gram matrix: exact enough in float64, and fast for N >> D
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    sigma = np.sqrt(np.clip(np.linalg.eigvalsh(gram), 0.0, None))
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma / total + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def mean_pairwise_cosine(x: np.ndarray) -> float:
    """Mean cosine over all pairs i != j of rows, in O(N D): (|sum u_i|^2 - sum |u_i|^2) / (N (N - 1))."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < 2:
        return float("nan")
    u = unit_rows(x)  # zero rows stay zero: cosine 0 with everything
    s = u.sum(0)
    return float((s @ s - (u * u).sum()) / (n * (n - 1)))
