"""`nextvec evaluate | diagnose | report` on a tiny saved run, through the real checkpoint loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from evalkit import make_store, random_docs
from nextvec.errors import FingerprintMismatch
from nextvec.models import registry
from nextvec.run import checkpoint

ROW_KEYS = {"name", "cosine", "r@1", "r@5", "r@10", "mrr", "in_doc_mrr", "contrastive_accuracy", "margin",
            "std_ratio", "rankme_pred", "rankme_target"}
NAMES = ["model", "mean", "copy_last", "linear_average", "knn_successor"]


@pytest.fixture
def run_and_store(tmp_path):
    store = make_store(tmp_path / "store", random_docs(n_docs=40, dim=8, seed=5))
    cfg = {"name": "gru", "context_length": 3, "hidden_dim": 16, "num_layers": 1}
    import torch

    torch.manual_seed(0)
    model = registry.build_model(cfg, 8)
    run = tmp_path / "run"
    meta = {"model_config": model.config.model_dump(mode="json"), "train_config": {}, "step": 7,
            "fingerprint": store.fingerprint, "dim": 8, "context_length": 3}
    checkpoint.save_checkpoint(run / "checkpoints" / "best.safetensors", model, meta)
    from nextvec.integrity import seal_json  # each line as RunFolder.log writes it

    with open(run / "metrics.jsonl", "w") as f:
        for s in range(1, 8):
            f.write(seal_json({"step": s, "epoch": 0, "lr": 1e-3, "loss": 2.0 / s, "mse": 1.0 / s, "cosine": 1.0 / s}).decode() + "\n")
            if s % 3 == 0:
                f.write(seal_json({"step": s, "val/cosine": 0.1 * s, "val/loss": 1.0 / s}).decode() + "\n")
    return run, store


def invoke(*args):
    from nextvec.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_evaluate_json_schema(run_and_store, tmp_path):
    run, store = run_and_store
    out = tmp_path / "eval.json"
    res = invoke("evaluate", run, "--store", store.root, "--split", "test", "--json", out)
    assert res.exit_code == 0, res.output
    assert "margin = mean over windows of cos(y_cos, target) - cos(y_cos, context[-1])" in res.output
    data = json.loads(out.read_text())
    assert {"split", "windows", "bank_size", "rows", "fingerprint", "checkpoint", "context_length"} <= set(data)
    assert data["split"] == "test" and data["context_length"] == 3
    assert data["bank_size"] == len(store.split_chunks("test"))
    assert data["windows"] == int((store.chunk_pos[store.split_chunks("test")] >= 1).sum())
    assert [r["name"] for r in data["rows"]] == NAMES
    for r in data["rows"]:
        assert ROW_KEYS <= set(r)
    assert data["fingerprint"] == store.fingerprint
    assert data["checkpoint"].endswith("best.safetensors")
    dist = data["distribution"]
    assert dist["k"] == 8 and [r["name"] for r in dist["rows"]] == ["real next vectors", *NAMES, "knn_sampler",
                                                                     "point+gaussian"]
    assert "| real next vectors |" in res.output and "energy score" in res.output


def test_evaluate_rollout_table(run_and_store, tmp_path):
    run, store = run_and_store
    out = tmp_path / "eval.json"
    res = invoke("evaluate", run, "--store", store.root, "--samples", "0", "--rollout", "2", "--json", out)
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    ro = data["rollout"]
    assert data["distribution"] is None and ro["horizon"] == 2 and ro["k"] == 8
    assert set(ro["predictors"]) >= {"knn_walk"} and all(len(p["energy"]) == 2 for p in ro["predictors"].values())
    assert "| real continuation |" in res.output and "| knn_walk |" in res.output


def test_evaluate_val_split(run_and_store):
    run, store = run_and_store
    ckpt = run / "checkpoints" / "best.safetensors"  # a checkpoint file works as well as its run folder
    res = invoke("evaluate", ckpt, "--store", store.root, "--split", "val", "--no-baselines")
    assert res.exit_code == 0, res.output
    assert "split val" in res.output and "copy_last" not in res.output


def test_refuses_a_store_of_another_encoder(run_and_store, tmp_path):
    run, _ = run_and_store
    other = make_store(tmp_path / "other", random_docs(n_docs=10, dim=8, seed=1))
    fp = dict(other.fingerprint, name="another-encoder")
    from nextvec.store.format import read_manifest, write_sealed_json

    manifest = read_manifest(other.root)
    manifest["encoder"] = fp
    write_sealed_json(other.root / "manifest.json", manifest)  # a store written by another encoder, whole
    res = invoke("evaluate", run, "--store", other.root)
    assert res.exit_code != 0
    assert isinstance(res.exception, FingerprintMismatch)
    assert "another-encoder" in str(res.exception)


def test_diagnose_writes_json_and_histogram(run_and_store, tmp_path):
    run, store = run_and_store
    out = tmp_path / "diag.json"
    res = invoke("diagnose", run, "--store", store.root, "--json", out, "--n-decode", 20)
    assert res.exit_code == 0, res.output
    assert "verdict:" in res.output
    data = json.loads(out.read_text())
    for k in ("std_ratio_median", "rankme_pred", "rankme_target", "pairwise_cos_pred", "pairwise_cos_target",
              "mean_baseline_cosine", "model_cosine", "abc", "collapsed"):
        assert k in data
    assert (run / "diagnose" / "std_ratio_test.png").read_bytes()[:4] == b"\x89PNG"


def test_report(run_and_store, tmp_path):
    run, store = run_and_store
    res = invoke("report", run, "--store", store.root, "--out", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    html = (tmp_path / "rep" / "report.html").read_text()
    for png in ("training_curves.png", "std_ratio_hist.png"):
        assert (tmp_path / "rep" / png).read_bytes()[:4] == b"\x89PNG"
        assert f"]({png})" in md
    assert html.count("data:image/png;base64,") == 2  # standalone: plots embedded
    assert "| copy_last |" in md and "Verdict:" in md
    assert md.count("**true next**") == 10
    # the true next sentence of each example is the chunk's text in the store
    ex = [line for line in md.splitlines() if "**true next**" in line][0].split(": ", 1)[1]
    assert ex in store.texts(np.arange(len(store)))
