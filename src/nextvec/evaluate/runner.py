"""`evaluate_run`: a model and every baseline on the same windows against the same bank, as one table."""

from __future__ import annotations

import numpy as np

from nextvec.data.windows import seeded_subset, select_windows
from nextvec.errors import NextvecError, check_fingerprint
from nextvec.session import resolve_context_length
from nextvec.evaluate.metrics import MARGIN_DEFINITION, PRIMARY_METRIC, Bank, score_predictions
from nextvec.models.base import predict_windows

RANK_DEFINITION = ("rank of the true next chunk by cosine with y_cos; ties count half; bank rows with a vector identical "
                   "to the target's are not competitors")
ROW_KEYS = ("name", "cosine", "r@1", "r@5", "r@10", "mrr", "in_doc_mrr", "contrastive_accuracy", "margin",
            "std_ratio", "rankme_pred", "rankme_target")
# (key, header, higher is better?) of the Markdown table
TABLE_COLUMNS = (("cosine", "cosine", True), ("r@1", "R@1", True), ("r@5", "R@5", True), ("r@10", "R@10", True),
                 ("mrr", "MRR", True), ("in_doc_mrr", "in-doc MRR", True),
                 ("contrastive_accuracy", "contr. acc.", True), ("margin", "margin", True),
                 ("std_ratio", "std ratio", None))


def evaluate_run(model, store, split: str = "test", context_length: int | None = None, baselines: bool = True,
                 batch_size: int = 512, max_windows: int | None = None, seed: int = 0, meta: dict | None = None,
                 checkpoint: str | None = None, extra: dict | None = None, samples: int = 8,
                 dist_max_windows: int | None = 5000) -> dict:
    """Evaluate `model` (any Predictor, or None for baselines only) and the baselines on one split.

    Every predictor sees the same windows (context length from `context_length`, else `meta`, else the
    model) and is ranked against the same bank: every chunk of the split, context chunks included.
    `extra` adds named predictors (rows after the model's). With `samples` K > 0 every predictor, plus the
    sampler baselines, also draws K samples per window on (a seeded subset of at most `dist_max_windows`
    of) the same windows: the `distribution` section (see evaluate.distribution). Returns the JSON of
    `nextvec evaluate`: split, windows, bank_size, rows (one per predictor, model first, keys ROW_KEYS and
    more), distribution, the store's fingerprint and the checkpoint.
    """
    if meta and meta.get("fingerprint"):
        check_fingerprint(store.fingerprint, meta["fingerprint"], f"checkpoint {checkpoint or meta.get('run_dir', '')}".strip())
    T = resolve_context_length(model, context_length, meta)
    predictors = {}
    if model is not None:
        predictors["model"] = model
    predictors.update(extra or {})  # e.g. {"model+memory": MemoryPredictor}, rows right after the model's
    if baselines:
        from nextvec.models.baselines import build_baselines

        predictors.update(build_baselines(store))
    if not predictors:
        raise NextvecError("nothing to evaluate: no model and baselines switched off")
    targets, total = select_windows(store, split, max_windows, seed)
    bank = Bank.for_split(store, split)
    preds = predict_windows(predictors, store, targets, T, batch_size)
    from nextvec.evaluate.collapse import rankme

    rk_target = rankme(store.get(targets))
    rows = []
    for name, (y_dec, y_cos, sec) in preds.items():
        row = {"name": name, **score_predictions(y_dec, y_cos, targets, store, bank, rk_target), "seconds": round(sec, 3)}
        if name == "model":
            row["model_name"] = getattr(model, "name", type(model).__name__)
        rows.append(row)
    distribution = None
    if samples:
        distribution = _distributions(predictors, model, store, targets, T, samples, dist_max_windows, seed,
                                      with_samplers=baselines)
    return {
        "distribution": distribution,
        "split": split,
        "windows": int(len(targets)),
        "windows_total": int(total),
        "bank_size": len(bank),
        "context_length": T,
        "primary_metric": PRIMARY_METRIC,
        "margin_definition": MARGIN_DEFINITION,
        "rank_definition": RANK_DEFINITION,
        "store": str(store.root),
        "fingerprint": dict(store.fingerprint),
        "checkpoint": checkpoint,
        "step": (meta or {}).get("step"),
        "rows": rows,
    }


def sampler_baselines(store, point, context_length: int, seed: int = 0) -> dict:
    """The two sampler baselines: kNN-successor sampler (train split) and `point` + Gaussian residuals (val)."""
    from nextvec.models.samplers import KnnSuccessorSampler, PointGaussianSampler, residual_covariance

    out = {"knn_sampler": KnnSuccessorSampler(store)}
    if point is not None:
        cov = residual_covariance(point, store, context_length, "val", seed=seed)
        out["point+gaussian"] = PointGaussianSampler(point, cov)
    return out


def _distributions(predictors: dict, model, store, targets, T: int, k: int, max_windows: int | None, seed: int,
                   with_samplers: bool) -> dict:
    from nextvec.evaluate.distribution import evaluate_distributions

    if max_windows is not None:
        targets = seeded_subset(targets, max_windows, seed)
    predictors = dict(predictors)
    if with_samplers:
        predictors.update(sampler_baselines(store, model, T, seed))
    return evaluate_distributions(predictors, store, targets, T, k, seed)


def format_table(result: dict) -> str:
    """The evaluate result as a Markdown table; the best value of each scored column in bold."""
    rows = result["rows"]
    head = ["predictor"] + [h for _, h, _ in TABLE_COLUMNS] + ["cosine p10/p50/p90", "RankMe pred/target"]
    best = {}
    for key, _, higher in TABLE_COLUMNS:
        vals = [r[key] for r in rows if r.get(key) is not None and np.isfinite(r[key])]
        if higher is not None and len(rows) > 1 and vals:
            best[key] = max(vals) if higher else min(vals)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"] if r["name"] != "model" else f"model ({r.get('model_name', 'model')})"]
        for key, _, _ in TABLE_COLUMNS:
            v = r.get(key)
            s = "n/a" if v is None or not np.isfinite(v) else f"{v:.3f}"
            cells.append(f"**{s}**" if key in best and v == best[key] else s)
        cells.append("/".join(f"{r.get(k, float('nan')):.2f}" for k in ("cosine_p10", "cosine_p50", "cosine_p90")))
        cells.append(f"{r.get('rankme_pred', float('nan')):.0f}/{r.get('rankme_target', float('nan')):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_summary(result: dict) -> str:
    """One line saying what was evaluated, then the definitions the numbers follow."""
    return (f"split {result['split']}: {result['windows']} windows (of {result['windows_total']}), bank of "
            f"{result['bank_size']} chunks (every chunk of the split, context chunks included), context length "
            f"{result['context_length']}\nmargin = {result['margin_definition']}\nrank: {result['rank_definition']}")
