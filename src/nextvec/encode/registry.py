"""Encoder spec strings -> encoders (see the package docstring), and back from a fingerprint."""

from __future__ import annotations

from nextvec.encode.base import Encoder
from nextvec.encode.sentence_transformer import MINILM_NAME, MiniLMEncoder, SentenceTransformerEncoder
from nextvec.errors import NextvecError

DEFAULT_ENCODER = "minilm"
GTR_HUB_NAME = "sentence-transformers/gtr-t5-base"


def resolve_devices(device: str = "cpu") -> list[str]:
    """`cpu` | `cuda` (every visible GPU) | `cuda:N` | `cuda:0,1` -> torch device names, checked to exist."""
    device = device.strip().lower()
    if device == "cpu":
        return ["cpu"]
    kind, _, ids = device.partition(":")
    if kind != "cuda" or (ids and not all(i.strip().isdigit() for i in ids.split(","))):
        raise NextvecError(f"--device must be cpu, cuda, cuda:N or cuda:N,M, got {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise NextvecError(f"--device {device}: no CUDA device is available here (torch {torch.__version__}, "
                           f"built with CUDA {torch.version.cuda or 'no'}); use --device cpu")
    count = torch.cuda.device_count()
    wanted = [int(i) for i in ids.split(",")] if ids else list(range(count))
    missing = [i for i in wanted if i >= count]
    if missing:
        raise NextvecError(f"--device {device}: no CUDA device {missing[0]} (this machine has {count})")
    return [f"cuda:{i}" for i in wanted]


def load_encoder(spec: str = DEFAULT_ENCODER, device: str = "cpu") -> Encoder:
    """Build an encoder from a spec string (see the package docstring) on `device` (see `resolve_devices`):
    fp16 on GPUs; several GPUs encode through sentence-transformers' multi-process pool."""
    devices = resolve_devices(device)
    kind, _, arg = spec.partition(":")
    if len(devices) > 1 and kind not in ("minilm", "default", "st"):
        raise NextvecError(f"several devices ({', '.join(devices)}) need a sentence-transformers encoder "
                           f"(minilm or st:...); {spec!r} runs on one: pick cuda:N")
    device = devices[0] if len(devices) == 1 else devices
    if kind in ("minilm", "default") and not arg:
        return MiniLMEncoder(device=device)
    if kind == "hash":
        from nextvec.encode.hashing import HashingEncoder

        try:
            return HashingEncoder(int(arg or 64))
        except ValueError as e:
            raise NextvecError(f"bad hash encoder spec {spec!r}: {e}") from e
    if kind == "st" and arg:
        return SentenceTransformerEncoder(arg, device=device)
    if kind in ("gtr", "gtr-l2"):
        from nextvec.encode.gtr import GTREncoder

        return GTREncoder(arg or GTR_HUB_NAME, normalize=kind == "gtr-l2", device=device)
    raise NextvecError(
        f"unknown encoder {spec!r}; use 'minilm' (embedded default), 'st:NAME_OR_PATH', "
        f"'gtr[:NAME_OR_PATH]', 'gtr-l2[:NAME_OR_PATH]' or 'hash[:DIM]' (bag-of-words hashing, for smoke tests)"
    )


def encoder_spec_for(fingerprint: dict) -> str:
    """The `load_encoder` spec that rebuilds the encoder a store or checkpoint was made with."""
    name = str(fingerprint.get("name", ""))
    if name == MINILM_NAME:
        return "minilm"
    if name.startswith("gtr-t5-vec2text:"):
        base = name.split(":", 1)[1]
        kind = "gtr-l2" if fingerprint.get("normalized") else "gtr"
        return kind if base == "gtr-t5-base" else f"{kind}:{base}"
    if name.startswith("hash-bow-") and name[9:].isdigit():  # the bag-of-words hashing encoder
        return f"hash:{name[9:]}"
    return f"st:{name}"
