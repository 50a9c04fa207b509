"""`evaluate_run`: a model and every baseline on the same windows against the same bank, as one table."""

from __future__ import annotations

import numpy as np

from nextvec.data.windows import seeded_subset, select_windows
from nextvec.errors import NextvecError
from nextvec.evaluate.metrics import MARGIN_DEFINITION, PRIMARY_METRIC, score_predictions
from nextvec.scoring import Bank
from nextvec.models.base import predict_windows
from nextvec.options import EvaluateOptions, RolloutOptions

RANK_DEFINITION = ("rank of the true next chunk by cosine with y_cos; ties count half; bank rows with a vector identical "
                   "to the target's are not competitors")
ROW_KEYS = ("name", "cosine", "r@1", "r@5", "r@10", "mrr", "in_doc_mrr", "contrastive_accuracy", "margin",
            "std_ratio", "rankme_pred", "rankme_target")
# (key, header, higher is better?) of the Markdown table
TABLE_COLUMNS = (("cosine", "cosine", True), ("r@1", "R@1", True), ("r@5", "R@5", True), ("r@10", "R@10", True),
                 ("mrr", "MRR", True), ("in_doc_mrr", "in-doc MRR", True),
                 ("contrastive_accuracy", "contr. acc.", True), ("margin", "margin", True),
                 ("std_ratio", "std ratio", None))


def evaluate_run(session, options: EvaluateOptions | None = None, extra: dict | None = None) -> dict:
    """Evaluate the session's model (its `model`; None for baselines only), the model with its memory when
    the session has one ("model+memory"), `extra` named predictors and the baselines on one split.

    Every predictor sees the same windows (the session's context length, else 5) and is ranked against the
    same bank: every chunk of the split, context chunks included. With `samples` K > 0 every predictor, plus
    the sampler baselines, also draws K samples per window on (a seeded subset of at most `dist_windows` of)
    the same windows: the `distribution` section (see evaluate.distribution). With `rollout` H > 0, the
    `rollout` section (see evaluate.rollout). Returns the JSON of `nextvec evaluate`: split, windows,
    bank_size, rows (one per predictor, model first, keys ROW_KEYS and more), distribution, rollout, the
    store's fingerprint and the checkpoint.
    """
    o, model, store = options or EvaluateOptions(), session.model, session.store
    T = session.window
    predictors = {} if model is None else {"model": model}
    if session.memory is not None:
        predictors["model+memory"] = session.memory
    predictors.update(extra or {})  # rows right after the model's
    if o.baselines:
        from nextvec.models.baselines import build_baselines

        predictors.update(build_baselines(store))
    if not predictors:
        raise NextvecError("nothing to evaluate: no model and baselines switched off")
    targets, total = select_windows(store, o.split, o.max_windows, o.seed)
    bank = Bank.for_split(store, o.split)
    preds = predict_windows(predictors, store, targets, T, o.batch_size)
    from nextvec.evaluate.collapse import rankme

    rk_target = rankme(store.get(targets))
    rows = []
    for name, (y_dec, y_cos, sec) in preds.items():
        row = {"name": name, **score_predictions(y_dec, y_cos, targets, store, bank, rk_target), "seconds": round(sec, 3)}
        if name == "model":
            row["model_name"] = getattr(model, "name", type(model).__name__)
        rows.append(row)
    distribution = None
    if o.samples:
        distribution = _distributions(predictors, model, store, targets, T, o)
    return {
        "distribution": distribution,
        "rollout": _rollout(session, T, o) if o.rollout and model is not None else None,
        "split": o.split,
        "windows": int(len(targets)),
        "windows_total": int(total),
        "bank_size": len(bank),
        "context_length": T,
        "primary_metric": PRIMARY_METRIC,
        "margin_definition": MARGIN_DEFINITION,
        "rank_definition": RANK_DEFINITION,
        "store": str(store.root),
        "fingerprint": dict(store.fingerprint),
        "checkpoint": session.checkpoint or None,
        "step": session.meta.get("step"),
        "rows": rows,
    }


def _rollout(session, T: int, o: EvaluateOptions) -> dict:
    """The rollout section of a run (its default sampler, the model alone, its point rollout, the kNN
    walk), or why there is none (documents too short for prefix + horizon)."""
    from nextvec.evaluate.rollout import evaluate_rollouts, run_rollout_predictors

    try:
        return evaluate_rollouts(run_rollout_predictors(session.model, session.memory, T), session.store,
                                 RolloutOptions(split=o.split, horizon=o.rollout, prompts=o.rollouts, prefix=o.prefix,
                                                k=o.samples or 8, seed=o.seed))
    except NextvecError as e:  # the one-step tables stand; say why there is no rollout
        return {"skipped": str(e)}


def sampler_baselines(store, point, context_length: int, seed: int = 0) -> dict:
    """The two sampler baselines: kNN-successor sampler (train split) and `point` + Gaussian residuals (val)."""
    from nextvec.models.samplers import KnnSuccessorSampler, PointGaussianSampler, residual_covariance

    out = {"knn_sampler": KnnSuccessorSampler(store)}
    if point is not None:
        cov = residual_covariance(point, store, context_length, "val", seed=seed)
        out["point+gaussian"] = PointGaussianSampler(point, cov)
    return out


def _distributions(predictors: dict, model, store, targets, T: int, o: EvaluateOptions) -> dict:
    from nextvec.evaluate.distribution import evaluate_distributions

    targets = seeded_subset(targets, o.dist_windows, o.seed)
    predictors = dict(predictors)
    if o.baselines:
        predictors.update(sampler_baselines(store, model, T, o.seed))
    return evaluate_distributions(predictors, store, targets, T, o.samples, o.seed)


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
