"""`nextvec train` through typer's CliRunner, the overfit check, and a 2-process DDP run under torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from storekit import build_store, random_docs
from nextvec.cli import app
from nextvec.errors import NextvecError
from nextvec.run.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "configs" / "tiny.toml")
runner = CliRunner()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("s") / "store", random_docs(n_docs=30))


def test_train_command_runs_and_resumes(store, tmp_path):
    run = tmp_path / "run"
    args = ["train", str(store.root), "--model", "lstm", "--config", TINY, "--out", str(run)]
    r = runner.invoke(app, [*args, "--set", "train.max_steps=6", "--set", "train.val_every=3"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output[r.output.index("{"):])
    assert summary["model"] == "lstm" and summary["steps"] == 6
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "lstm"
    r = runner.invoke(app, [*args, "--resume", "--set", "train.max_steps=9"])  # extend the finished run
    assert r.exit_code == 0, r.output
    assert json.loads(r.output[r.output.index("{"):])["steps"] == 9
    model, meta = load_model(run)
    assert meta["model_config"]["name"] == "lstm"


def test_the_untrained_model_is_validated_and_can_be_the_best(store, tmp_path):
    """Step 0 is a validation point: a run whose training only hurts val keeps the starting model (which,
    with a zero-initialised residual over a prior, is that prior)."""
    import numpy as np

    rng = np.random.default_rng(0)  # documents whose chunks sit near one topic vector: the mean prior is good
    docs = [(rng.normal(size=8) + 0.3 * rng.normal(size=(int(rng.integers(6, 12)), 8))).astype(np.float32)
            for _ in range(30)]
    topical = build_store(tmp_path / "topical", docs)
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(topical.root), "--config", TINY, "--out", str(out), "--set", "model.name=amn",
                            "--set", "model.residual_prior=mean", "--set", "train.max_steps=4", "--set", "train.val_every=2",
                            "--set", "train.lr=3", "--set", "train.warmup_steps=0", "--set", "train.grad_clip=0"])
    assert r.exit_code == 0, r.output
    vals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    vals = {v["step"]: v["val/cosine"] for v in vals if "val/cosine" in v}
    assert sorted(vals) == [0, 2, 4]
    assert vals[0] > 0.8 and vals[0] > max(vals[2], vals[4]), vals  # lr 3 wrecks the prior
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] == vals[0] and summary["best_step"] == 0 and load_model(out)[1]["step"] == 0


def test_train_windows_trains_on_a_seeded_subset(store, tmp_path):
    args = ["train", str(store.root), "--config", TINY, "--set", "train.max_steps=2", "--set", "train.batch_size=16"]
    full = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    part = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--set", "train.train_windows=40"])
    n_full = json.loads(full.output[full.output.index("{"):])["train_windows"]
    assert n_full > 40 and json.loads(part.output[part.output.index("{"):])["train_windows"] == 40


def test_unknown_config_key_is_a_clear_error(store, tmp_path):
    r = runner.invoke(app, ["train", str(store.root), "--config", TINY, "--out", str(tmp_path / "r"),
                            "--set", "train.learnin_rate=1"])
    assert isinstance(r.exception, NextvecError) and "train.learnin_rate" in str(r.exception)
    proc = subprocess.run([sys.executable, "-m", "nextvec", "train", str(store.root), "--out", str(tmp_path / "r"),
                           "--model", "rnn"], capture_output=True, text=True)
    assert proc.returncode == 2 and "model.name" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # ~10-20 s on 2 shared cores
def test_overfit_check_small_lstm_with_mse(tmp_path):
    """The sanity experiment: a small LSTM trained with MSE alone memorises 1,000 training windows."""
    store = build_store(tmp_path / "store", random_docs(n_docs=100, min_len=10, max_len=30, dim=8))
    mse_only = [f"loss.{t}=0" for t in ("cosine", "infonce", "moment", "variance", "covariance")]
    sets = [*mse_only, "loss.hard_negatives=0", "model.hidden_dim=128", "train.batch_size=100",
            "train.max_steps=400", "train.val_every=100", "train.lr=5e-3", "train.warmup_steps=20",
            "train.max_windows_per_doc=100", "train.weight_decay=0", "train.min_lr_ratio=0.01"]
    r = runner.invoke(app, ["train", str(store.root), "--model", "lstm", "--config", TINY, "--overfit", "1000",
                            "--out", str(tmp_path / "run"), *[x for s in sets for x in ("--set", s)]])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output[r.output.index("{"):])
    assert summary["train_windows"] == 1000 and summary["val_windows"] == 1000
    assert summary["train_cosine"] >= 0.95


@pytest.mark.slow  # three Python processes import torch: ~10-25 s on 2 shared cores
def test_ddp_two_cpu_processes_under_torchrun(store, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "nextvec", "train", str(store.root), "--config", TINY, "--out", str(run),
           "--set", "train.max_steps=6", "--set", "train.val_every=3", "--set", "train.batch_size=8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert proc.stdout.count('"world_size": 2') == 1  # only rank 0 prints
    _, meta = load_model(run)
    assert meta["step"] in (0, 3, 6)  # validated before training and at steps 3 and 6
    steps = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if "val/cosine" in r] == [0, 3, 6]
    assert [r["step"] for r in steps if "loss" in r] == list(range(1, 7))  # rank 0 logs, once per step


def test_resume_with_a_damaged_config_is_a_clear_error(tmp_path):
    from nextvec.cli import app
    from nextvec.errors import NextvecError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"model": ')
    r = runner.invoke(app, ["train", str(tmp_path), "--out", str(run), "--resume"])
    assert isinstance(r.exception, NextvecError) and "not valid JSON" in str(r.exception)


def test_init_from_a_pretrained_run_and_its_refusals(store, tmp_path):
    """--init starts from another run's weights (fresh optimizer and schedule); another model config or
    another encoder's store is refused before training, with the reason."""
    import torch

    base = ["--model", "lstm", "--config", TINY, "--set", "train.val_every=3"]
    r = runner.invoke(app, ["train", str(store.root), *base, "--out", str(tmp_path / "pre"), "--set", "train.max_steps=6"])
    assert r.exit_code == 0, r.output
    pre_ckpt = tmp_path / "pre" / "checkpoints" / "last.safetensors"  # step 6: trained, unlike the initial weights
    pre, _ = load_model(pre_ckpt)
    # a learning rate of ~0 for one step: the fine-tuned weights must be the pre-trained ones
    r = runner.invoke(app, ["train", str(store.root), *base, "--out", str(tmp_path / "ft"), "--init", str(pre_ckpt),
                            "--set", "train.max_steps=1", "--set", "train.lr=1e-20", "--set", "train.warmup_steps=0"])
    assert r.exit_code == 0, r.output
    ft, meta = load_model(tmp_path / "ft" / "checkpoints" / "last.safetensors")
    assert meta["step"] == 1 and meta["train_config"]["init_from"] == str(pre_ckpt)
    for (k, a), (_, b) in zip(pre.state_dict().items(), ft.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)
    # and without --init the same one step starts elsewhere
    r = runner.invoke(app, ["train", str(store.root), *base, "--out", str(tmp_path / "fresh"),
                            "--set", "train.max_steps=1", "--set", "train.lr=1e-20", "--set", "train.warmup_steps=0"])
    fresh, _ = load_model(tmp_path / "fresh" / "checkpoints" / "last.safetensors")
    assert any(not torch.equal(a, b) for a, b in zip(pre.state_dict().values(), fresh.state_dict().values()))

    r = runner.invoke(app, ["train", str(store.root), *base, "--out", str(tmp_path / "bad"), "--init", str(tmp_path / "pre"),
                            "--set", "model.hidden_dim=48"])
    assert isinstance(r.exception, NextvecError) and "hidden_dim" in str(r.exception)
    other = build_store(tmp_path / "other", random_docs(n_docs=30), fingerprint={"name": "other-encoder", "dim": 8})
    r = runner.invoke(app, ["train", str(other.root), *base, "--out", str(tmp_path / "bad2"), "--init", str(tmp_path / "pre")])
    assert isinstance(r.exception, NextvecError) and "encoder" in str(r.exception).lower()
    assert not (tmp_path / "bad2" / "checkpoints").exists()


@pytest.mark.slow  # three Python processes import torch
def test_ddp_on_a_streamed_store_matches_one_process_with_the_same_global_batch(tmp_path):
    """Ranks stream disjoint documents (tests/data/test_streaming.py checks the split itself); the loss curve
    of 2 x 16 windows per step follows a 1-process run of 32 per step."""
    store = build_store(tmp_path / "store", random_docs(n_docs=120, min_len=8, max_len=20, dim=16))
    common = ["--config", TINY, "--set", "train.max_steps=60", "--set", "train.val_every=30",
              "--set", "train.data_source=stream", "--set", "train.shuffle_buffer=128"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "nextvec",
           "train", str(store.root), "--out", str(tmp_path / "two"), *common, "--set", "train.batch_size=16"]
    proc = subprocess.run(two, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = runner.invoke(app, ["train", str(store.root), "--out", str(tmp_path / "one"), *common,
                            "--set", "train.batch_size=32"])
    assert r.exit_code == 0, r.output
    curves = {}
    for name in ("one", "two"):
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["data_source"] == "stream" and summary["steps"] == 60
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        curves[name] = [json.loads(x)["loss"] for x in lines if '"loss"' in x]
    early = [sum(c[:10]) / 10 for c in curves.values()]
    late = [sum(c[-10:]) / 10 for c in curves.values()]
    assert all(lt < 0.9 * e for lt, e in zip(late, early))  # both learn
    assert abs(late[0] - late[1]) < 0.05 * late[0], curves
