"""Evaluation: next-vector metrics, baselines side by side, collapse diagnostics and a report.

    evaluate_run(model, store, split)   -> dict (the JSON of `nextvec evaluate`; format_table prints it)
    diagnose_run(model, store, split)   -> dict (the JSON of `nextvec diagnose`; format_diagnosis prints it)
    report.write_report(run_dir, store) -> Path of report.md (with report.html and PNG plots beside it)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from nextvec.evaluate.diagnostics import diagnose_predictions, diagnose_run, format_diagnosis
from nextvec.evaluate.metrics import Bank, evaluate_predictor
from nextvec.evaluate.runner import evaluate_run, format_summary, format_table


def to_jsonable(obj):
    """numpy scalars/arrays -> Python, NaN/inf -> None, so the output is strict JSON."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(obj, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2, allow_nan=False) + "\n")
    return path


__all__ = ["Bank", "diagnose_predictions", "diagnose_run", "evaluate_predictor", "evaluate_run", "format_diagnosis",
           "format_summary", "format_table", "to_jsonable", "write_json"]
