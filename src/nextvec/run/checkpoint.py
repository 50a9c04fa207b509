"""The one checkpoint format of every trainer: files that load without executing code.

A checkpoint is one .safetensors file. Its tensors are the model weights as `model.<name>` (a tied tensor
once, under its first name) and, in `last`, the AdamW state flattened as `optim.<param>.<key>`. Its
metadata is JSON in the safetensors header, so one atomic rename publishes weights and metadata together;
a readable copy sits beside it as `.json`. Nothing is ever unpickled.

Every checkpoint names its `kind`: "lvm" (nextvec.train.loop) or "decoder" (the learned text decoder,
nextvec.decode.learned_train). Metadata always holds what rebuilds the model (model config, dim), the
encoder fingerprint and the step; trainers add their own (training config, loop position, val metrics).

Older files still load: LVM checkpoints of format "nextvec-lvm-checkpoint/1" (no `kind`), and decoder
checkpoints written by safetensors' save_model, whose metadata is only in the .json beside them (kind
"inverter") and whose optimizer state sits in `last.optim.safetensors`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nextvec.errors import NextvecError, check_fingerprint
from nextvec.integrity import CHECKPOINT_SEAL, check_safetensors, read_json, seal_safetensors
from nextvec.store.format import atomic_write_bytes, write_sealed_json

FORMAT = "nextvec-checkpoint/3-sealed"  # far from the older names: one damaged byte cannot make it look older
UNSEALED_FORMAT = "nextvec-checkpoint/2"
LEGACY_LVM_FORMAT = "nextvec-lvm-checkpoint/1"
META_KEY = "nextvec"
KINDS = {"lvm": "an LVM (next-vector model)", "decoder": "a learned-decoder"}  # kind -> what it is
LOADERS = {"lvm": "nextvec.run.checkpoint.load_model or `nextvec evaluate`",
           "decoder": "nextvec.decode.learned.load_checkpoint or a --decoder option"}


def save_checkpoint(path: str | Path, model: torch.nn.Module, meta: dict,
                    optimizer: torch.optim.Optimizer | None = None, kind: str = "lvm") -> None:
    """Write model (+ optimizer) tensors and `meta` (+ kind, format) to `path` atomically (temp file + rename)."""
    from safetensors.torch import save

    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r} is not one of {', '.join(KINDS)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v for k, v in _untied(model.state_dict()).items()}
    meta = dict(meta, kind=kind, format=FORMAT)
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
    data = save(tensors, metadata={META_KEY: json.dumps(meta, sort_keys=True), CHECKPOINT_SEAL: "0" * 32})
    atomic_write_bytes(path, seal_safetensors(data))
    write_sealed_json(path.with_suffix(".json"), meta, indent=2)


def _alias_key(t: torch.Tensor) -> tuple:
    return t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride()


def _untied(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state_dict with each tied tensor (the same storage under several names) kept once, under its first
    name, on the CPU: safetensors refuses to store aliases."""
    seen, out = set(), {}
    for k, v in state.items():
        key = _alias_key(v)
        if v.numel() and key in seen:
            continue
        seen.add(key)
        out[k] = v.detach().cpu().contiguous()
    return out


def resolve_checkpoint(path: str | Path, kind: str | None = None) -> Path:
    """A run folder -> its best checkpoint (else last); a .json metadata file -> its .safetensors."""
    path = Path(path)
    what = f"{kind} checkpoint" if kind else "checkpoint"
    if path.is_dir():
        for name in ("best", "last"):
            for cand in (path / "checkpoints" / f"{name}.safetensors", path / f"{name}.safetensors"):
                if cand.is_file():
                    return cand
        hint = f"; train one with `nextvec train-decoder STORE --out {path}`" if kind == "decoder" else ""
        raise NextvecError(f"{path} holds no {what} (expected checkpoints/best.safetensors or last.safetensors){hint}")
    if path.suffix == ".json":
        path = path.with_suffix(".safetensors")
    if not path.is_file():
        raise NextvecError(f"{what} {path} does not exist")
    if path.suffix != ".safetensors":
        raise NextvecError(f"{path} is not a nextvec checkpoint: only .safetensors files are loaded (pickles never are)")
    return path


def read_checkpoint(path: str | Path, kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, meta) of a checkpoint file or run folder; refuses anything that is not a nextvec safetensors
    checkpoint, and (given `kind`) a checkpoint of the other kind."""
    from safetensors.torch import load

    path = resolve_checkpoint(path, kind)
    data = path.read_bytes()
    header = _header(data, path)
    metadata = header.get("__metadata__") or {}
    sealed = CHECKPOINT_SEAL in metadata or _declared_format(metadata) == FORMAT
    if sealed:
        check_safetensors(data, path)
        if path.with_suffix(".json").is_file():  # its readable copy: damaged there means damaged here
            read_json(path.with_suffix(".json"), sealed=True)
    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own error types for damaged or foreign files
        raise NextvecError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    if META_KEY in metadata:
        try:
            meta = json.loads(metadata[META_KEY])
        except json.JSONDecodeError as e:
            raise NextvecError(f"{path} holds damaged nextvec metadata ({e})") from e
        if not isinstance(meta, dict) or meta.get("format") not in (FORMAT, UNSEALED_FORMAT, LEGACY_LVM_FORMAT):
            found = meta.get("format") if isinstance(meta, dict) else None
            raise NextvecError(f"{path} has checkpoint format {found!r}, expected {FORMAT!r}")
    else:
        tensors, meta = _legacy_decoder(path, tensors)
    meta["kind"] = checkpoint_kind(meta)
    if kind is not None and meta["kind"] != kind:
        raise NextvecError(f"{path} is {KINDS[meta['kind']]} checkpoint (kind {meta['kind']!r}), not {KINDS[kind]} "
                           f"one (kind {kind!r}); load it with {LOADERS[meta['kind']]}")
    meta["path"] = str(path)
    meta["run_dir"] = str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)
    return tensors, meta


def _header(data: bytes, path: Path) -> dict:
    """The JSON header of safetensors bytes."""
    n = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    try:
        if not 0 < n <= len(data) - 8:
            raise ValueError(f"header length {n} for a file of {len(data)} bytes")
        header = json.loads(data[8 : 8 + n])
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except ValueError as e:
        raise NextvecError(f"{path} is not a readable safetensors checkpoint ({e})") from e
    return header


def _declared_format(metadata: dict) -> str | None:
    try:
        return json.loads(metadata.get(META_KEY, "{}")).get("format")
    except (ValueError, AttributeError):
        return None


def checkpoint_kind(meta: dict) -> str:
    """The `kind` of a checkpoint's metadata; checkpoints written before it existed are told by what they hold."""
    kind = meta.get("kind")
    if kind == "inverter" or (kind is None and "backbone_config" in meta):  # the kind older decoder files carry
        return "decoder"
    if kind is None and "model_config" in meta:  # LVM checkpoints had no kind
        return "lvm"
    if kind not in KINDS:
        raise NextvecError(f"{meta.get('path', 'the checkpoint')} has unknown kind {kind!r}; expected one of "
                           f"{', '.join(KINDS)}")
    return kind


def _legacy_decoder(path: Path, tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """A decoder checkpoint in the decoder's own format: bare weight names, metadata (kind "inverter") in the
    .json beside it, optimizer state in `<name>.optim.safetensors`."""
    from safetensors.torch import load_file

    side = path.with_suffix(".json")
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("kind") != "inverter":
        raise NextvecError(f"{path} is a safetensors file without nextvec metadata")
    tensors = {f"model.{k}": v for k, v in tensors.items()}
    optim = path.with_name(path.stem + ".optim.safetensors")
    if optim.is_file():
        tensors.update({f"optim.{k}": v for k, v in load_file(str(optim)).items()})
        meta["optimizer"] = {"param_groups": [], "scalars": {}}
    return tensors, meta


def model_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Load a checkpoint's model tensors into `model`; a tied tensor saved once fills all its names."""
    weights = model_state(tensors)
    names: dict[tuple, list[str]] = {}
    for k, v in model.state_dict().items():
        if v.numel():
            names.setdefault(_alias_key(v), []).append(k)
    for tied in names.values():
        saved = [k for k in tied if k in weights]
        weights.update({k: weights[saved[0]] for k in tied if saved and k not in weights})
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise NextvecError(f"{where}: weights do not match the model config it carries ({e})") from e


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


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Restore the saved optimizer state (moments, step counts) into `optimizer`; its hyperparameters stay
    those it was built with, so the config of the resumed run wins."""
    groups = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": optimizer_state(tensors, meta)["state"], "param_groups": groups})


def load_model(path: str | Path, expected_fingerprint: dict | None = None, device: str | torch.device = "cpu"):
    """Rebuild a trained LVM -> (model in eval mode, meta).

    Args:
        path: a run folder (its best checkpoint, else last) or a checkpoint file.
        expected_fingerprint: the encoder fingerprint of the store it will be used with; a mismatch
            (other encoder or dimension) raises FingerprintMismatch.
        device: where to put the model.
    """
    from nextvec.models.registry import build_model

    tensors, meta = read_checkpoint(path, kind="lvm")
    if expected_fingerprint is not None:
        check_fingerprint(expected_fingerprint, meta["fingerprint"], f"checkpoint {meta['path']}")
    model = build_model(meta["model_config"], meta["dim"])
    load_weights(model, tensors, meta["path"])
    return model.to(device).eval(), meta
