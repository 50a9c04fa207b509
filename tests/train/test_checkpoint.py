"""Checkpoints round-trip through safetensors + JSON and never execute code."""

import json
import pickle

import pytest
import torch

from nextvec.config import ModelConfig
from nextvec.errors import NextvecError
from nextvec.models import build_model
from nextvec.run.checkpoint import (load_model, model_state, optimizer_state, read_checkpoint,
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


def tiny_decoder():
    from nextvec.decode.learned import LearnedDecoderModelConfig, build_learned_decoder

    cfg = LearnedDecoderModelConfig(backbone="scratch", hidden=16, layers=1, heads=2, prefix_len=1, prefix_hidden=8,
                              max_tokens=8, bow_queries=0)
    model, bcfg = build_learned_decoder(cfg, 6)
    model.set_out_vocab(range(100, 140))
    return model, bcfg


def test_every_checkpoint_names_its_kind_and_the_other_kind_is_refused(tmp_path):
    from nextvec.decode.learned import decoder_meta, load_checkpoint

    lvm = build_model(ModelConfig(name="gru", hidden_dim=4, num_layers=1), 6)
    save_checkpoint(tmp_path / "lvm" / "checkpoints" / "best.safetensors", lvm, meta_for(lvm))
    dec, bcfg = tiny_decoder()
    save_checkpoint(tmp_path / "dec" / "checkpoints" / "best.safetensors", dec,
                    {"fingerprint": FP, "backbone_config": bcfg, "step": 1, **decoder_meta(dec)}, kind="decoder")
    assert json.loads((tmp_path / "lvm" / "checkpoints" / "best.json").read_text())["kind"] == "lvm"
    assert read_checkpoint(tmp_path / "dec")[1]["kind"] == "decoder"
    with pytest.raises(NextvecError, match="is a learned-decoder checkpoint .kind 'decoder'., not an LVM"):
        load_model(tmp_path / "dec")
    with pytest.raises(NextvecError, match="is an LVM .* checkpoint .kind 'lvm'., not a learned-decoder"):
        load_checkpoint(tmp_path / "lvm")
    # tied weights are stored once and fill every name they are tied under
    loaded, meta = load_checkpoint(tmp_path / "dec")
    assert meta["kind"] == "decoder" and meta["checkpoint"].endswith("best.safetensors")
    assert loaded.lm.cls.predictions.decoder.weight.data_ptr() == loaded.lm.bert.embeddings.word_embeddings.weight.data_ptr()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in dec.state_dict().items())


def test_checkpoints_written_before_the_kind_still_load(tmp_path):
    """An LVM checkpoint of format nextvec-lvm-checkpoint/1 and a decoder written by safetensors' save_model
    (metadata and optimizer state in files beside it) load, their kind told by what their metadata holds."""
    from safetensors.torch import save_file, save_model

    from nextvec.decode.learned import decoder_meta, load_checkpoint
    from nextvec.run.checkpoint import load_optimizer

    lvm = build_model(ModelConfig(name="gru", hidden_dim=4, num_layers=1), 6)
    meta = dict(meta_for(lvm), format="nextvec-lvm-checkpoint/1")
    save_file({f"model.{k}": v for k, v in lvm.state_dict().items()}, str(tmp_path / "old_lvm.safetensors"),
              metadata={"nextvec": json.dumps(meta)})
    loaded, meta = load_model(tmp_path / "old_lvm.safetensors")
    assert meta["kind"] == "lvm" and all(torch.equal(v, loaded.state_dict()[k]) for k, v in lvm.state_dict().items())

    dec, bcfg = tiny_decoder()
    opt = torch.optim.AdamW(dec.parameters(), lr=1e-3)
    dec.loss(torch.randn(2, 6), None, torch.tensor([[101, 120, 102]] * 2), torch.ones(2, 3, dtype=torch.long)).backward()
    opt.step()
    ck = tmp_path / "dec" / "checkpoints"
    ck.mkdir(parents=True)
    save_model(dec, str(ck / "last.safetensors"))
    (ck / "last.json").write_text(json.dumps({"kind": "inverter", "format": 1, "fingerprint": FP, "step": 4,
                                              "backbone_config": bcfg, **decoder_meta(dec)}))
    params = [p for g in opt.param_groups for p in g["params"]]
    save_file({f"{i}.{k}": v for i, p in enumerate(params) for k, v in opt.state[p].items()},
              str(ck / "last.optim.safetensors"))
    loaded, meta = load_checkpoint(tmp_path / "dec")
    assert meta["kind"] == "decoder" and meta["step"] == 4
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in dec.state_dict().items())
    tensors, meta = read_checkpoint(ck / "last.safetensors", kind="decoder")
    opt2 = torch.optim.AdamW(loaded.parameters(), lr=1e-3)
    load_optimizer(opt2, tensors, meta)
    for p, p2 in zip(params, loaded.parameters()):
        assert all(torch.equal(opt.state[p][k], opt2.state[p2][k]) for k in opt.state[p])
