"""The successor memory's part of training: after the last step, its gates are fitted on val with the run's
best model and saved beside the checkpoints as RUN/memory.json (`train.memory = true`, the default)."""

from __future__ import annotations

from pathlib import Path

from nextvec.data.windows import window_targets
from nextvec.models.memory_fit import fit_memory
from nextvec.run.checkpoint import load_model
from nextvec.run.folder import run_index_config, save_memory

SUMMARY_KEYS = ("weight", "threshold", "val_cosine", "val_mrr", "model_val_cosine", "model_val_mrr", "sample_weight",
                "sample_threshold", "topic_weight", "val_energy_score", "model_val_energy_score")


def fit_run_memory(store, run_dir: str | Path) -> dict:
    """Fit the successor memory of a run's best model (else its last) on val and save RUN/memory.json;
    returns a short summary for the run's summary.json."""
    if len(window_targets(store, "val")) == 0:
        return {"fitted": False, "reason": "the store has no val windows"}
    model, meta = load_model(run_dir, expected_fingerprint=store.fingerprint)
    model.eval()
    T = int(meta.get("context_length") or model.config.context_length)
    fit = fit_memory(model, store, T, index=run_index_config(run_dir))
    save_memory(run_dir, fit)
    return {k: fit[k] for k in SUMMARY_KEYS}
