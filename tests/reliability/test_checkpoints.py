"""Checkpoints execute nothing: pickle payloads that would write a file are refused wherever a checkpoint is
read (load_model on a run folder or file, Session.open, train --resume), and the file is never written.
A checkpoint for another encoder or dimension is refused with the reason."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from nextvec.errors import FingerprintMismatch, NextvecError


class Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def pickled(marker: Path) -> bytes:
    return pickle.dumps({"model.w": Payload(marker)})


def torch_zip(marker: Path) -> bytes:
    b = io.BytesIO()
    torch.save({"state_dict": Payload(marker)}, b)
    return b.getvalue()


def test_the_payload_is_live(tmp_path):
    """Control: unpickling the payload really writes the file, so its absence below means something."""
    marker = tmp_path / "control"
    pickle.loads(pickled(marker))
    assert marker.read_text() == "pwned"
    marker.unlink()
    with zipfile.ZipFile(io.BytesIO(torch_zip(marker))):
        pass
    torch.load(io.BytesIO(torch_zip(marker)), weights_only=False)
    assert marker.exists()


def _store(root, fp_name="test-enc", dim=8):
    from nextvec.store import ConceptStore, StoreWriter

    fp = {"name": fp_name, "dim": dim, "pooling": "none", "normalized": True, "version": "0"}
    rng = np.random.default_rng(0)
    w = StoreWriter(root, fp, {"source": "t"})
    docs = [(f"d{i}", [f"d{i} s{j}" for j in range(6)]) for i in range(6)]
    w.add_shard(docs, rng.normal(size=(36, dim)).astype(np.float32), source_end=6)
    w.finalize((0.5, 0.25, 0.25), 0)
    return ConceptStore(root)


def _loaders(run: Path, store_root: Path):
    from nextvec.session import Session
    from nextvec.run.checkpoint import load_model
    from nextvec.train.loop import train

    return {
        "load_model(run)": lambda: load_model(run),
        "load_model(best.safetensors)": lambda: load_model(run / "checkpoints" / "best.safetensors"),
        "load_model(best.json)": lambda: load_model(run / "checkpoints" / "best.json"),
        "load_model(last.pt)": lambda: load_model(run / "checkpoints" / "last.pt"),
        "Session.open(run)": lambda: Session.open(run, store_root, encoder="none"),
        "train --resume": lambda: train(store_root, {"model": {"name": "gru", "hidden_dim": 8}}, run, resume=True),
    }


@pytest.mark.parametrize("craft", ["pickle", "torch-zip", "pickle-in-metadata"])
def test_crafted_checkpoints_are_refused_and_run_nothing(tmp_path, craft):
    from safetensors.torch import save_file

    marker = tmp_path / "pwned.txt"
    store_root = tmp_path / "store"
    _store(store_root)
    ck = tmp_path / "run" / "checkpoints"
    ck.mkdir(parents=True)
    for name in ("best", "last"):
        if craft == "pickle":
            (ck / f"{name}.safetensors").write_bytes(pickled(marker))
        elif craft == "torch-zip":
            (ck / f"{name}.safetensors").write_bytes(torch_zip(marker))
        else:  # a valid safetensors file whose metadata smuggles a pickle (and claims torch format)
            save_file({"model.w": torch.zeros(2)}, str(ck / f"{name}.safetensors"),
                      metadata={"nextvec": json.dumps({"format": "pickle", "payload": pickled(marker).hex()}),
                                "format": "pt"})
        (ck / f"{name}.json").write_bytes(pickled(marker))
        (ck / f"{name}.pt").write_bytes(torch_zip(marker))
    (tmp_path / "run" / "config.json").write_bytes(pickled(marker))
    for what, load in _loaders(tmp_path / "run", store_root).items():
        with pytest.raises(NextvecError) as e:
            load()
        assert str(e.value), what
        assert not marker.exists(), f"{what} executed the payload"


def _checkpoint(path: Path, store, dim=None):
    from nextvec.models.registry import build_model
    from nextvec.run.checkpoint import save_checkpoint

    cfg = {"name": "gru", "context_length": 4, "hidden_dim": 8, "num_layers": 1}
    dim = dim or store.dim
    model = build_model(cfg, dim)
    meta = {"model_config": model.config.model_dump(mode="json") if hasattr(model, "config") else cfg,
            "fingerprint": dict(store.fingerprint, dim=dim), "dim": dim, "context_length": 4, "step": 1}
    save_checkpoint(path, model, meta)
    return path


def test_checkpoint_for_another_encoder_or_dimension_is_refused_with_the_reason(tmp_path):
    from nextvec.session import Session
    from nextvec.run.checkpoint import load_model

    store = _store(tmp_path / "s8")
    other_enc = _store(tmp_path / "other", fp_name="another-encoder")
    other_dim = _store(tmp_path / "s12", dim=12)
    ck = _checkpoint(tmp_path / "run" / "checkpoints" / "best.safetensors", store)
    model, meta = load_model(ck, expected_fingerprint=store.fingerprint)  # the matching store loads
    assert meta["dim"] == 8

    with pytest.raises(FingerprintMismatch, match="name: 'another-encoder' here vs 'test-enc'"):
        load_model(ck, expected_fingerprint=other_enc.fingerprint)
    with pytest.raises(FingerprintMismatch, match="dim: 12 here vs 8"):
        load_model(ck, expected_fingerprint=other_dim.fingerprint)
    with pytest.raises(FingerprintMismatch, match="another-encoder"):
        Session.open(ck, other_enc.root, encoder="none")
    with pytest.raises(FingerprintMismatch, match="dim"):
        Session.open(ck, other_dim.root, encoder="none")
    # a checkpoint whose weights are for another dimension than its metadata claims
    bad = _checkpoint(tmp_path / "bad" / "best.safetensors", store, dim=12)
    meta_bad = json.loads(bad.with_suffix(".json").read_text())
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(bad), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta_bad.update(dim=8, fingerprint=store.fingerprint, format="nextvec-checkpoint/2")  # unsealed: edited by hand
    save_file(tensors, str(bad), metadata={"nextvec": json.dumps(meta_bad)})
    with pytest.raises(NextvecError, match="weights do not match"):
        load_model(bad, expected_fingerprint=store.fingerprint)
