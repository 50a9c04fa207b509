"""Checkpoints round-trip through safetensors + JSON and never execute code."""

import json
import pickle

import pytest
import torch

from nextvec.config import ModelConfig
from nextvec.errors import NextvecError
from nextvec.models import build_model
from nextvec.train.checkpoint import (load_model, model_state, optimizer_state, read_checkpoint,
                                      resolve_checkpoint, save_checkpoint)

FP = {"name": "test-random", "dim": 6, "pooling": "none", "normalized": True, "version": "0"}


def meta_for(model):
    return {"model_config": model.config.model_dump(), "train_config": {}, "step": 3, "fingerprint": FP, "dim": 6,
            "context_length": model.config.context_length}


def test_round_trip_model_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="transformer", hidden_dim=8, num_heads=2, residual_prior="recency"), 6)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)).y_dec.sum().backward()
    opt.step()
    path = tmp_path / "run" / "checkpoints" / "last.safetensors"
    save_checkpoint(path, model, meta_for(model), opt)
    loaded, meta = load_model(tmp_path / "run")  # run folder -> best, else last
    assert meta["step"] == 3 and meta["run_dir"] == str(tmp_path / "run") and not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    tensors, meta = read_checkpoint(path.with_suffix(".json"))
    opt2 = torch.optim.AdamW(build_model(model.config.model_dump(), 6).parameters(), lr=1e-3)
    opt2.load_state_dict(optimizer_state(tensors, meta))
    before, after = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert before.keys() == after.keys()
    for i in before:
        assert all(torch.equal(before[i][k], after[i][k]) for k in before[i])
    assert set(model_state(tensors)) == set(model.state_dict())
    x, m = torch.randn(3, 5, 6), torch.ones(3, 5, dtype=torch.bool)
    torch.testing.assert_close(loaded(x, m).y_dec, model.eval()(x, m).y_dec)


class Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickles_are_refused_and_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    blob = pickle.dumps({"state": Payload(str(marker))})
    (tmp_path / "model.pt").write_bytes(blob)
    (tmp_path / "evil.safetensors").write_bytes(blob)
    with pytest.raises(NextvecError, match="only .safetensors"):
        load_model(tmp_path / "model.pt")
    with pytest.raises(NextvecError, match="not a readable safetensors"):
        load_model(tmp_path / "evil.safetensors")
    assert not marker.exists()


def test_foreign_safetensors_and_missing_paths(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(NextvecError, match="without nextvec metadata"):
        load_model(tmp_path / "other.safetensors")
    with pytest.raises(NextvecError, match="holds no checkpoint"):
        resolve_checkpoint(tmp_path)
    with pytest.raises(NextvecError, match="does not exist"):
        load_model(tmp_path / "nope.safetensors")


def test_sidecar_json_is_readable_metadata(tmp_path):
    model = build_model(ModelConfig(name="gru", hidden_dim=4, num_layers=1), 6)
    save_checkpoint(tmp_path / "best.safetensors", model, meta_for(model))
    meta = json.loads((tmp_path / "best.json").read_text())
    assert meta["model_config"]["name"] == "gru" and meta["fingerprint"] == FP
    assert not list(tmp_path.glob("*.tmp"))
