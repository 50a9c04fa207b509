"""Evaluation: next-vector metrics, baselines side by side, collapse diagnostics and a report.

    evaluate_run(model, store, split)   -> dict (the JSON of `nextvec evaluate`; format_table prints it)
    diagnose_run(model, store, split)   -> dict (the JSON of `nextvec diagnose`; format_diagnosis prints it)
    report.write_report(run_dir, store) -> Path of report.md (with report.html and PNG plots beside it)
"""

from __future__ import annotations

from nextvec.evaluate.diagnostics import diagnose_predictions, diagnose_run, format_diagnosis
from nextvec.evaluate.metrics import evaluate_predictor
from nextvec.scoring import Bank
from nextvec.evaluate.jsonio import to_jsonable, write_json
from nextvec.evaluate.runner import evaluate_run, format_summary, format_table


__all__ = ["Bank", "diagnose_predictions", "diagnose_run", "evaluate_predictor", "evaluate_run", "format_diagnosis",
           "format_summary", "format_table", "to_jsonable", "write_json"]
