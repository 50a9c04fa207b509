"""Successor memory (kNN-LM over train chunks): lookup, gate, fitting on val, and the train/evaluate CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from storekit import build_store, random_docs
from nextvec.cli import app
from nextvec.data.windows import gather_windows, window_targets
from nextvec.models.memory_fit import (SAMPLE_THRESHOLDS, SAMPLE_WEIGHTS, THRESHOLDS, TOPIC_TIE, TOPIC_WEIGHTS,
                                       WEIGHTS, fit_memory)
from nextvec.run.folder import save_memory
from nextvec.session import load_memory
from nextvec.models.baselines import LinearAverageBaseline
from nextvec.models.memory import MemoryPredictor, SuccessorMemory, combine

TINY = str(Path(__file__).resolve().parents[2] / "configs" / "tiny.toml")


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def template_docs(n_templates=12, copies=5, length=8, dim=16, noise=0.02, seed=0):
    """Documents that are noisy copies of a few template sequences: every val/test window has a train
    document that went on the same way, which is what a successor memory can exploit."""
    rng = np.random.default_rng(seed)
    templates = [unit(rng.normal(size=(length, dim))) for _ in range(n_templates)]
    return [unit(t + noise * rng.normal(size=t.shape)).astype(np.float32) for t in templates for _ in range(copies)]


@pytest.fixture(scope="module")
def templated(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("tpl") / "store", template_docs())


def test_lookup_returns_the_successor_of_the_matching_train_chunk(templated):
    st = templated
    mem = SuccessorMemory(st)
    targets = window_targets(st, "val")
    ctx, mask, tgt = gather_windows(st, targets, 4)
    vec, best = mem.lookup(ctx, mask)
    assert vec.shape == tgt.shape and np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    assert best.min() > 0.95  # a noisy copy of the last chunk is in train
    assert np.mean(np.sum(vec * unit(tgt), axis=1)) > 0.95  # ...and what followed it is the target's template


def test_gate_and_weight_zero():
    rng = np.random.default_rng(0)
    y, m = unit(rng.normal(size=(4, 8))), unit(rng.normal(size=(4, 8)))
    assert np.allclose(combine(y, m, np.full(4, 0.99), 0.0, 0.8), y, atol=1e-6)  # weight 0: the model
    closed = combine(y, m, np.full(4, 0.3), 2.0, 0.8)  # far below the threshold: the gate is shut
    assert np.allclose(closed, y, atol=1e-3)
    opened = combine(y, m, np.full(4, 0.99), 2.0, 0.8)
    assert np.all(np.sum(opened * m, 1) > np.sum(y * m, 1) + 0.1)  # moved toward the memory
    assert np.allclose(np.linalg.norm(opened, axis=1), 1, atol=1e-5)


def test_memory_predictor_keeps_y_dec(templated):
    model = LinearAverageBaseline()
    mp = MemoryPredictor(model, SuccessorMemory(templated), 1.0, 0.5)
    ctx, mask, _ = gather_windows(templated, window_targets(templated, "test")[:10], 4)
    c, m = torch.from_numpy(ctx), torch.from_numpy(mask)
    base, got = model.predict(c, m), mp.predict(c, m)
    assert torch.equal(got.y_dec, base.y_dec)
    assert not torch.allclose(got.y_cos, base.y_cos)
    assert torch.allclose(got.y_cos.norm(dim=1), torch.ones(10), atol=1e-5)
    off = MemoryPredictor(model, mp.memory, 0.0, 0.5).predict(c, m)
    assert torch.equal(off.y_cos, base.y_cos) and torch.equal(off.y_dec, base.y_dec)


def test_fit_opens_the_memory_where_it_helps_and_never_costs_cosine(templated, tmp_path):
    fit = fit_memory(LinearAverageBaseline(), templated, 4)
    assert fit["weight"] > 0
    assert fit["val_mrr"] > fit["model_val_mrr"] + 0.1 and fit["val_cosine"] >= fit["model_val_cosine"]
    assert len(fit["grid"]) == 1 + len(WEIGHTS) * len(THRESHOLDS) and fit["grid"][0]["weight"] == 0
    # on random documents nothing recurs: whatever is picked does not lower val cosine
    plain = build_store(tmp_path / "plain", random_docs(n_docs=30, dim=16))
    fit2 = fit_memory(LinearAverageBaseline(), plain, 4)
    assert fit2["val_cosine"] >= fit2["model_val_cosine"]
    run = tmp_path / "run"
    run.mkdir()
    assert load_memory(LinearAverageBaseline(), templated, run) is None  # no memory.json
    save_memory(run, fit)
    assert isinstance(load_memory(LinearAverageBaseline(), templated, run), MemoryPredictor)
    save_memory(run, dict(fit, weight=0.0, sample_weight=0.0))
    assert load_memory(LinearAverageBaseline(), templated, run) is None


def test_sampling_draws_recurring_text_from_the_memory_where_it_lowers_the_energy_score(templated, tmp_path):
    fit = fit_memory(LinearAverageBaseline(), templated, 4)
    # every val window continues a train template: drawing the memory's successors beats the point model
    assert fit["sample_weight"] > 0 and fit["val_energy_score"] < fit["model_val_energy_score"] - 0.1
    assert len(fit["sample_grid"]) == 1 + len(TOPIC_WEIGHTS) * len(SAMPLE_WEIGHTS) * len(SAMPLE_THRESHOLDS)
    # among the settings one step cannot tell apart (within TOPIC_TIE of the best), the most topic-aware wins
    best = min(g["energy_score"] for g in fit["sample_grid"])
    close = [g for g in fit["sample_grid"] if g["energy_score"] <= best + TOPIC_TIE]
    assert fit["topic_weight"] == max(g["topic_weight"] for g in close)
    assert fit["val_energy_score"] <= best + TOPIC_TIE
    mp = MemoryPredictor(LinearAverageBaseline(), SuccessorMemory(templated), 0.0, 0.0, 1.0, 0.0)
    ctx, mask, tgt = gather_windows(templated, window_targets(templated, "test"), 4)
    x = mp.sample(torch.from_numpy(ctx), torch.from_numpy(mask), 6, torch.Generator().manual_seed(0)).numpy()
    succ, _, _ = mp.memory.candidates(ctx, mask)  # gate fully open: every sample is one of the k successors
    assert np.allclose(np.abs(np.einsum("bnd,bkd->bnk", unit(x), succ) - 1).min(-1), 0, atol=1e-5)
    same = mp.sample(torch.from_numpy(ctx), torch.from_numpy(mask), 6, torch.Generator().manual_seed(0)).numpy()
    assert np.array_equal(x, same)
    closed = MemoryPredictor(LinearAverageBaseline(), mp.memory, 0.0, 0.0, 0.0, 0.0)
    y = LinearAverageBaseline().predict(torch.from_numpy(ctx), torch.from_numpy(mask)).y_dec.numpy()
    z = closed.sample(torch.from_numpy(ctx), torch.from_numpy(mask), 3).numpy()
    assert np.allclose(z, y[:, None])  # weight 0: the model's own samples (here its point, 3 times)


def test_train_writes_memory_and_evaluate_adds_its_row(templated, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(templated.root), "--config", TINY, "--out", str(out), "--set", "train.max_steps=6",
                            "--set", "train.val_every=3", "--set", "train.memory=true"])
    assert r.exit_code == 0, r.output
    fit = json.loads((out / "memory.json").read_text())
    summary = json.loads(r.output[r.output.index("{"):])
    assert summary["memory"]["weight"] == fit["weight"] > 0
    r = runner.invoke(app, ["evaluate", str(out), "--store", str(templated.root), "--split", "test", "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in json.loads((tmp_path / "e.json").read_text())["rows"]}
    assert list(rows)[:2] == ["model", "model+memory"]
    assert rows["model+memory"]["mrr"] > rows["model"]["mrr"]
    assert rows["model+memory"]["std_ratio"] == rows["model"]["std_ratio"]  # y_dec is the model's
    r = runner.invoke(app, ["evaluate", str(out), "--store", str(templated.root), "--no-memory", "--json", str(tmp_path / "f.json")])
    assert "model+memory" not in {row["name"] for row in json.loads((tmp_path / "f.json").read_text())["rows"]}
    r = runner.invoke(app, ["train", str(templated.root), "--config", TINY, "--out", str(tmp_path / "nomem"),
                            "--set", "train.max_steps=3", "--set", "train.memory=false"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "nomem" / "memory.json").exists()


def test_serve_uses_the_runs_memory_for_y_cos(templated, tmp_path):
    from fastapi.testclient import TestClient

    from nextvec.serve.app import create_app
    from nextvec.session import Session
    from nextvec.run.checkpoint import load_model

    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["train", str(templated.root), "--config", TINY, "--out", str(out), "--set", "train.max_steps=3",
                                 "--set", "train.memory=true"])
    assert r.exit_code == 0, r.output
    ctx, mask, _ = gather_windows(templated, window_targets(templated, "test"), 4)
    full = int(np.flatnonzero(mask.all(1))[0])  # a window with 4 real context chunks (the request has no padding)
    ctx, mask = ctx[full : full + 1], mask[full : full + 1]
    body = {"context_vectors": ctx[0].tolist(), "output_type": "cosine"}
    model, _ = load_model(out)
    want = load_memory(model, templated, out).predict(torch.from_numpy(ctx), torch.from_numpy(mask)).y_cos[0]
    plain = model.predict(torch.from_numpy(ctx), torch.from_numpy(mask)).y_cos[0]
    with TestClient(create_app(Session.open(out, templated.root, encoder=None, memory=True))) as c:
        assert c.get("/health").json()["model"].endswith("+memory")
        got = torch.tensor(c.post("/predict", json=body).json()["vector"])
    with TestClient(create_app(Session.open(out, templated.root, encoder=None))) as c:  # the default: the model alone
        got_plain = torch.tensor(c.post("/predict", json=body).json()["vector"])
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(got_plain, plain, atol=1e-5)
    assert not torch.allclose(want, plain, atol=1e-3)


def test_memory_draws_distinct_successors_without_replacement():
    """With the gate open, n <= k replaced samples are n different successors (repeats would shrink the set's
    spread); with the gate shut the model's samples pass through unchanged."""
    from nextvec.models.memory import mix_samples

    rng = np.random.default_rng(0)
    B, n, k, D = 5, 6, 8, 16
    samples = rng.normal(size=(B, n, D)).astype(np.float32)
    succ = np.eye(k, D, dtype=np.float32)[None].repeat(B, 0)  # successor j = basis vector j
    order = rng.random((B, k)).argsort(1)
    mixed = mix_samples(samples, succ, np.ones(B, np.float32), 1.0, -1.5, np.zeros((B, n + 1)), order)
    picked = np.abs(mixed).argmax(-1)  # (B, n) which successor each sample became
    assert all(len(set(row)) == n for row in picked)
    np.testing.assert_allclose(np.linalg.norm(mixed, axis=-1), np.linalg.norm(samples, axis=-1), rtol=1e-5)
    shut = mix_samples(samples, succ, np.zeros(B, np.float32), 1.0, 2.5, np.full((B, n + 1), 0.5), order)
    np.testing.assert_array_equal(shut, samples)


def test_topic_weight_keeps_the_successors_that_fit_the_document(tmp_path):
    """One sentence S recurs in two topics and is followed by each topic's own sentence: matching S alone
    mixes both successors; re-ranked by the context's topic, the memory keeps the successors of its own."""
    rng = np.random.default_rng(0)
    e = np.eye(8)

    def doc(topic, follow):
        rows = [e[topic], e[topic], e[7], unit(e[topic] + e[follow])]  # the successor stays on the topic
        return unit(np.array(rows) + 0.05 * rng.normal(size=(4, 8))).astype(np.float32)

    store = build_store(tmp_path / "s", [doc(0, 1) if i % 2 else doc(2, 3) for i in range(60)])
    mem = SuccessorMemory(store, k=4)
    ctx = unit(np.array([[e[0], e[0], e[7]]])).astype(np.float32)  # a topic-0 document that just said S
    mask = np.ones((1, 3), bool)
    plain, _, _ = mem.candidates(ctx, mask)
    topical, _, best = mem.candidates(ctx, mask, topic_weight=1.0)
    assert (plain[0] @ unit(e[2] + e[3]) > 0.9).any()  # S alone: the other topic's successor is a candidate
    assert (topical[0] @ unit(e[0] + e[1]) > 0.9).all()  # by topic: only this topic's successor
    assert best[0] > 0.9  # the kept matches are still close matches of S


def test_python_and_the_cli_make_the_same_run_folder(templated, tmp_path):
    """train.memory is the library's: `nextvec train` and `nextvec.train.loop.train` write the same files,
    memory.json included, with the same fit."""
    from nextvec.config import LVMConfig, load_config
    from nextvec.train.loop import train

    sets = ["train.max_steps=6", "train.val_every=3", "train.memory=true"]
    r = CliRunner().invoke(app, ["train", str(templated.root), "--config", TINY, "--out", str(tmp_path / "cli"),
                                 *[a for s in sets for a in ("--set", s)]])
    assert r.exit_code == 0, r.output
    summary = train(templated.root, load_config(LVMConfig, TINY, sets), tmp_path / "py")

    def files(run):
        return sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())

    assert files(tmp_path / "cli") == files(tmp_path / "py") and "memory.json" in files(tmp_path / "py")
    fits = [json.loads((tmp_path / run / "memory.json").read_text()) for run in ("cli", "py")]
    assert fits[0]["grid"] == fits[1]["grid"] and fits[0]["sample_grid"] == fits[1]["sample_grid"]
    assert summary["memory"]["weight"] == fits[1]["weight"]


def test_a_session_given_the_memory_reads_the_models_context_length(templated):
    """A model with its memory carries the model's context length, so a Session (and every evaluator) built
    on it feeds the run's window, not the default of 5."""
    from types import SimpleNamespace

    from nextvec.session import Session

    model, plain = LinearAverageBaseline(), LinearAverageBaseline()
    for m in (model, plain):
        m.eval = lambda m=m: m  # a trained model's eval(); the session calls it
    model.config = SimpleNamespace(context_length=7)
    mp = MemoryPredictor(model, SuccessorMemory(templated), 1.0, 0.5)
    assert Session.assemble(mp, None, templated).window == 7
    assert Session.assemble(MemoryPredictor(plain, mp.memory, 1.0, 0.5), None, templated).window == 5



def test_memory_share_is_stratified_in_every_set():
    """A gate of 0.5 replaces exactly half of every set of samples (not a binomial count that leaves some sets
    all model, some all memory); a fractional share rounds to its floor or ceiling with the right odds."""
    from nextvec.models.memory import mix_samples

    rng = np.random.default_rng(0)
    B, n, k, D = 4000, 8, 8, 16
    samples = rng.normal(size=(B, n, D)).astype(np.float32) + 10.0  # no successor looks like a sample
    succ = np.eye(k, D, dtype=np.float32)[None].repeat(B, 0)
    order = rng.random((B, k)).argsort(1)
    best = np.full(B, 5.0, np.float32)  # the gate fully open: share = weight
    half = mix_samples(samples, succ, best, 0.5, 0.0, rng.random((B, n + 1)), order)
    replaced = (half != samples).any(-1).sum(1)
    assert (replaced == 4).all()
    frac = mix_samples(samples, succ, best, 0.3, 0.0, rng.random((B, n + 1)), order)  # 2.4 of 8
    replaced = (frac != samples).any(-1).sum(1)
    assert set(replaced) == {2, 3}
    assert abs(replaced.mean() - 2.4) < 0.05
