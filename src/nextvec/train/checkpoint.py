"""Checkpoints that load without executing code.

RUN/checkpoints/{last,best}.safetensors hold the tensors: model weights as `model.<name>` and (in
`last`) the AdamW state flattened as `optim.<param>.<key>`. The metadata (model config, training
config, step, encoder fingerprint, dimension, loop position, optimizer hyperparameters) is JSON, stored
in the safetensors header, so one atomic rename publishes weights and metadata together; a readable
copy sits beside it as `.json`. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from nextvec.errors import NextvecError, check_fingerprint
from nextvec.store.format import fsync_path

FORMAT = "nextvec-lvm-checkpoint/1"
META_KEY = "nextvec"


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict,
                    optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write model (+ optimizer) tensors and `meta` to `path` atomically (temp file + rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = dict(meta, format=FORMAT)
    if optimizer is not None:
        sd = optimizer.state_dict()
        scalars = {}
        for i, st in sd["state"].items():
            for k, v in st.items():
                if torch.is_tensor(v):
                    tensors[f"optim.{i}.{k}"] = v.detach().cpu().contiguous()
                else:
                    scalars[f"{i}.{k}"] = v
        meta["optimizer"] = {"param_groups": sd["param_groups"], "scalars": scalars}
    text = json.dumps(meta, sort_keys=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: text})
    fsync_path(tmp)
    os.replace(tmp, path)
    side = path.with_suffix(".json")
    tmp_json = side.with_name(side.name + ".tmp")
    tmp_json.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp_json, side)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its best checkpoint (else last); a .json metadata file -> its .safetensors."""
    path = Path(path)
    if path.is_dir():
        for name in ("best", "last"):
            for cand in (path / "checkpoints" / f"{name}.safetensors", path / f"{name}.safetensors"):
                if cand.is_file():
                    return cand
        raise NextvecError(f"{path} holds no checkpoint (expected checkpoints/best.safetensors or last.safetensors)")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise NextvecError(f"checkpoint {path} does not exist")
    if path.suffix != ".safetensors":
        raise NextvecError(f"{path} is not a nextvec checkpoint: only .safetensors files are loaded (pickles never are)")
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint file; refuses anything that is not a nextvec safetensors file."""
    from safetensors import safe_open

    path = resolve_checkpoint(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for damaged or foreign files
        raise NextvecError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    try:
        meta = json.loads(header[META_KEY])
    except (KeyError, json.JSONDecodeError) as e:
        raise NextvecError(f"{path} is a safetensors file without nextvec metadata") from e
    if meta.get("format") != FORMAT:
        raise NextvecError(f"{path} has checkpoint format {meta.get('format')!r}, expected {FORMAT!r}")
    meta["path"] = str(path)
    meta["run_dir"] = str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)
    return tensors, meta


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def optimizer_state(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """Rebuild an optimizer state_dict from the flattened tensors and the JSON scalars."""
    if "optimizer" not in meta:
        raise NextvecError(f"{meta.get('path')} holds no optimizer state (only last.safetensors does)")
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, i, key = k.split(".", 2)
            state.setdefault(int(i), {})[key] = v
    for k, v in meta["optimizer"]["scalars"].items():
        i, key = k.split(".", 1)
        state.setdefault(int(i), {})[key] = v
    return {"state": dict(sorted(state.items())), "param_groups": meta["optimizer"]["param_groups"]}


def load_model(path: str | Path, expected_fingerprint: dict | None = None, device: str | torch.device = "cpu"):
    """Rebuild a trained LVM -> (model in eval mode, meta).

    Args:
        path: a run folder (its best checkpoint, else last) or a checkpoint file.
        expected_fingerprint: the encoder fingerprint of the store it will be used with; a mismatch
            (other encoder or dimension) raises FingerprintMismatch.
        device: where to put the model.
    """
    from nextvec.models.registry import build_model

    tensors, meta = read_checkpoint(path)
    if expected_fingerprint is not None:
        check_fingerprint(expected_fingerprint, meta["fingerprint"], f"checkpoint {meta['path']}")
    model = build_model(meta["model_config"], meta["dim"])
    try:
        model.load_state_dict(model_state(tensors))
    except RuntimeError as e:
        raise NextvecError(f"{meta['path']}: weights do not match the model config it carries ({e})") from e
    return model.to(device).eval(), meta
