"""The trainer: run folder, metrics, best checkpoint, early stopping, time budget, bit-for-bit resume,
fingerprint refusal."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from storekit import build_store, random_docs
from nextvec.config import LVMConfig, load_config
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.losses import TERMS
from nextvec.train import loop as train_loop
from nextvec.run.checkpoint import load_model, read_checkpoint
from nextvec.train.loop import train

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("s") / "store", random_docs(n_docs=30))


def cfg(*overrides):
    return load_config(LVMConfig, TINY, list(overrides))


def records(run):
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def test_run_folder_metrics_and_checkpoints(store, tmp_path):
    summary = train(store.root, cfg("train.max_steps=12", "train.val_every=6"), tmp_path / "run")
    run = tmp_path / "run"
    assert summary["steps"] == 12 and summary["stop_reason"] == "max_steps"
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["dim"] == store.dim and saved["model"]["residual_prior"] == "none"  # resolved
    steps = [r for r in records(run) if "loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert all({"lr", "grad_norm", *TERMS} <= set(r) for r in steps)  # every term, every step
    vals = [r for r in records(run) if "val/cosine" in r]
    assert [r["step"] for r in vals] == [0, 6, 12]  # the starting model is validated too
    for name in ("last", "best"):
        assert (run / "checkpoints" / f"{name}.safetensors").is_file()
        assert json.loads((run / "checkpoints" / f"{name}.json").read_text())["dim"] == store.dim
    model, meta = load_model(run)
    assert not model.training and meta["step"] == summary["best_step"]
    assert meta["fingerprint"] == store.fingerprint and meta["context_length"] == 4
    assert {"model_config", "train_config", "run_dir"} <= set(meta) and meta["run_dir"] == str(run)


def test_best_checkpoint_and_early_stopping(store, tmp_path, monkeypatch):
    scores = iter([0.1, 0.9, 0.5, 0.4, 0.3, 0.2])

    def fake_validate(*args, **kwargs):
        return {"val/cosine": next(scores), "val/loss": 0.0}

    monkeypatch.setattr(train_loop, "validate", fake_validate)
    summary = train(store.root, cfg("train.max_steps=30", "train.val_every=2", "train.patience=2"), tmp_path / "run")
    assert summary["stop_reason"] == "early_stopping"
    # validations at steps 0, 2, 4, 6: 0.1, 0.9, 0.5, 0.4
    assert summary["best_step"] == 2 and summary["best"] == 0.9
    assert summary["steps"] == 6  # two validations without improvement after step 2
    _, meta = read_checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors")
    assert meta["step"] == 2
    _, meta = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert meta["step"] == 6


def test_time_budget_stops_the_loop(store, tmp_path):
    summary = train(store.root, cfg("train.max_steps=1000", "train.max_minutes=1e-6"), tmp_path / "run")
    assert summary["stop_reason"] == "max_minutes" and summary["steps"] == 1
    assert (tmp_path / "run" / "checkpoints" / "last.safetensors").is_file()


@pytest.mark.parametrize("head", ["point", "energy", "flow"])
def test_resume_continues_bit_for_bit(store, tmp_path, head):
    c = cfg("train.max_steps=20", "train.val_every=5", "model.dropout=0.1",  # dropout: RNG must line up too
            f"model.head={head}", "model.head_width=32", "model.head_depth=1")  # the heads draw noise every step
    train(store.root, c, tmp_path / "straight")
    train(store.root, c, tmp_path / "split", stop_after=8)
    assert read_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")[1]["step"] == 8
    summary = train(store.root, None, tmp_path / "split", resume=True)
    assert summary["steps"] == 20
    a, _ = read_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b, _ = read_checkpoint(tmp_path / "split" / "checkpoints" / "last.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    train_steps = lambda run: [r for r in records(run) if "loss" in r]  # noqa: E731
    assert train_steps(tmp_path / "straight") == train_steps(tmp_path / "split")


def test_refuses_existing_run_and_missing_resume(store, tmp_path):
    train(store.root, cfg("train.max_steps=2"), tmp_path / "run")
    with pytest.raises(NextvecError, match="already holds a run"):
        train(store.root, cfg("train.max_steps=2"), tmp_path / "run")
    with pytest.raises(NextvecError, match="nothing|no checkpoints"):
        train(store.root, cfg(), tmp_path / "empty", resume=True)


def test_refuses_a_store_from_another_encoder(store, tmp_path):
    train(store.root, cfg("train.max_steps=2"), tmp_path / "run")
    other_fp = dict(store.fingerprint, name="another-encoder")
    other = build_store(tmp_path / "other", random_docs(n_docs=30), fingerprint=other_fp)
    with pytest.raises(FingerprintMismatch, match="another-encoder"):
        train(other.root, None, tmp_path / "run", resume=True)
    with pytest.raises(FingerprintMismatch):
        load_model(tmp_path / "run", expected_fingerprint=other_fp)
    load_model(tmp_path / "run", expected_fingerprint=store.fingerprint)


def test_bad_select_metric_and_too_few_windows(store, tmp_path):
    with pytest.raises(NextvecError, match="select_metric"):
        train(store.root, cfg("train.select_metric=val/accuracy"), tmp_path / "a")
    with pytest.raises(NextvecError, match="batch_size"):
        train(store.root, cfg("train.batch_size=100000"), tmp_path / "b")


def test_resume_from_a_periodic_checkpoint_after_a_kill(store, tmp_path):
    """A kill leaves metrics past the last checkpoint (and maybe a cut line); resume drops them and the
    continued run logs exactly what an uninterrupted one does."""
    c = cfg("train.max_steps=12", "train.val_every=100", "train.checkpoint_every=4")
    train(store.root, c, tmp_path / "straight")
    train(store.root, c, tmp_path / "killed", stop_after=6)  # last checkpoint: step 6 (the stop) ...
    run = tmp_path / "killed"
    # ... pretend the kill came at step 6 after the step-4 checkpoint: restore that state by re-running to 4
    train(store.root, c, tmp_path / "at4", stop_after=4)
    for name in ("last.safetensors", "last.json"):
        (run / "checkpoints" / name).write_bytes((tmp_path / "at4" / "checkpoints" / name).read_bytes())
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "lo')  # a line cut by the kill
    train(store.root, None, run, resume=True)
    straight = [r for r in records(tmp_path / "straight") if "loss" in r]
    assert [r for r in records(run) if "loss" in r] == straight


def test_resume_refuses_a_changed_model(store, tmp_path):
    train(store.root, cfg("train.max_steps=2"), tmp_path / "run")
    with pytest.raises(NextvecError, match="model.. cannot change"):
        train(store.root, cfg("train.max_steps=4", "model.hidden_dim=64"), tmp_path / "run", resume=True)


@pytest.mark.parametrize("head", ["energy", "flow"])
def test_a_sampling_head_logs_its_loss_and_validates_its_energy_score(store, tmp_path, head):
    c = cfg("train.max_steps=10", "train.val_every=5", f"model.head={head}", "model.head_width=32",
            "train.select_metric=val/energy_score", "train.select_mode=min")
    train(store.root, c, tmp_path / "run")
    steps = [r for r in records(tmp_path / "run") if "loss" in r]
    vals = [r for r in records(tmp_path / "run") if "val/energy_score" in r]
    assert all(np.isfinite(r[head]) for r in steps) and len(vals) == 3  # steps 0, 5, 10
    assert all(0 < r["val/energy_score"] < 2 for r in vals)
    model, meta = load_model(tmp_path / "run")
    assert model.config.head == head and meta["val"]["val/energy_score"] == min(r["val/energy_score"] for r in vals)


def rotation_docs(n_docs=40, length=12, dim=8, seed=0):
    """Documents where each vector is a fixed rotation of the one before: a next vector a model can learn."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    docs = []
    for _ in range(n_docs):
        v = [rng.normal(size=dim)]
        for _ in range(length - 1):
            v.append(q @ v[-1])
        d = np.stack(v).astype(np.float32)
        docs.append(d / np.linalg.norm(d, axis=1, keepdims=True))
    return docs


def test_the_point_recipe_trains_past_step_0_by_default(tmp_path):
    """The default recipe with model.head=point: its default select metric must see what training improves
    (it kept the untrained step 0 when it scored y_dec's energy score)."""
    store = build_store(tmp_path / "rot", rotation_docs())
    default = Path(__file__).resolve().parents[2] / "configs" / "default.toml"
    c = load_config(LVMConfig, default, ["model.head=point", "model.hidden_dim=32", "train.batch_size=32",
                                         "train.max_steps=60", "train.val_every=20", "train.progress=false",
                                         "train.memory=false"])
    summary = train(store.root, c, tmp_path / "run")
    vals = [r for r in records(tmp_path / "run") if "val/cosine" in r]
    assert vals[-1]["val/cosine"] > vals[0]["val/cosine"] + 0.05  # training improved val cosine ...
    assert summary["select_metric"] == "val/cosine" and summary["best_step"] > 0  # ... and the run kept it
    assert "warnings" not in summary
    # a selection that cannot see the improvement keeps step 0, and the summary says so
    bad = c.model_copy(update={"train": c.train.model_copy(update={"select_metric": "val/cosine", "select_mode": "min"})})
    summary = train(store.root, bad, tmp_path / "bad")
    assert summary["best_step"] == 0 and "untrained step 0" in summary["warnings"][0]


def test_a_run_that_keeps_step_0_while_cosine_improved_is_flagged():
    loop = {"best_step": 0, "val_cosine_0": 0.30}
    assert "untrained step 0" in train_loop.untrained_warning(loop, {"val/cosine": 0.40}, "val/energy_score")
    assert train_loop.untrained_warning(loop, {"val/cosine": 0.30}, "val/energy_score") is None
    assert train_loop.untrained_warning({**loop, "best_step": 50}, {"val/cosine": 0.40}, "val/cosine") is None


def test_selection_auto_follows_the_head():
    from nextvec.config import TrainConfig, resolve_selection

    assert resolve_selection(TrainConfig(), "energy").select_metric == "val/energy_score"
    pt = resolve_selection(TrainConfig(), "point")
    assert (pt.select_metric, pt.select_mode) == ("val/cosine", "max")
    own = resolve_selection(TrainConfig(select_metric="val/loss"), "point")
    assert (own.select_metric, own.select_mode) == ("val/loss", "min")


def test_the_progress_bar_follows_the_limit_that_ends_the_run_first():
    from types import SimpleNamespace

    from tqdm import tqdm

    def run(minutes, steps=5000, step=10):
        train_cfg = SimpleNamespace(max_minutes=minutes, max_steps=steps)
        return SimpleNamespace(cfg=SimpleNamespace(train=train_cfg, model=SimpleNamespace(name="amn")), loop={"step": step})

    bar = tqdm(total=5000, disable=True)
    # 10 steps in 6 s after a first validation of 4 s: the other 50 s of the 1-minute budget allow 83 more
    train_loop._bar_limit(bar, run(1.0), elapsed=10.0, paced_s=6.0, paced_steps=10)
    assert bar.total == 93 and "1-min budget" in bar.desc
    train_loop._bar_limit(bar, run(0.0), elapsed=10.0, paced_s=6.0, paced_steps=10)  # no budget: max_steps
    assert bar.total == 5000 and "max_steps 5000" in bar.desc
    train_loop._bar_limit(bar, run(60.0, steps=50), elapsed=10.0, paced_s=6.0, paced_steps=10)  # budget > max_steps
    assert bar.total == 50


def test_a_budget_that_ends_before_two_epochs_is_flagged():
    assert "0.95 epochs" in train_loop.short_run_warning(0.95, "max_minutes", 3.0)
    assert train_loop.short_run_warning(0.95, "early_stopping", 3.0) is None
    assert train_loop.short_run_warning(2.5, "max_minutes", 3.0) is None


def test_tensorboard_logger_writes_every_record_as_scalars(store, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(store.root, cfg("train.max_steps=6", "train.val_every=3", "train.logger=tensorboard"), tmp_path / "run")
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "lr", "grad_norm", "mse", "val/cosine", "val/loss"} <= tags
    assert [e.step for e in acc.Scalars("loss")] == list(range(1, 7))
    assert [e.step for e in acc.Scalars("val/cosine")] == [0, 3, 6]
    logged = [r["loss"] for r in records(tmp_path / "run") if "loss" in r]
    assert [e.value for e in acc.Scalars("loss")] == pytest.approx(logged, rel=1e-6)
