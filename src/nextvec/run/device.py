"""Where a model runs: one rule for training, the learned decoder and loading."""

from __future__ import annotations

import torch

from nextvec.errors import NextvecError


def resolve_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cuda' gets this process's local GPU."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NextvecError("train.device is cuda but no CUDA GPU is available; use train.device=cpu")
        return torch.device(preference if ":" in preference else f"cuda:{local_rank}")
    if preference != "cpu":
        raise NextvecError(f"train.device must be auto, cpu or cuda[:N], got {preference!r}")
    return torch.device("cpu")
