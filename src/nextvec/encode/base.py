"""The Encoder protocol every backend implements, and what the backends share."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    dim: int

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """(N,) texts -> float32 (N, D)."""
        ...

    def fingerprint(self) -> dict:
        """name, dim, pooling, normalized, version: what a store, checkpoint and index must agree on."""
        ...


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load a model without transformers' "Loading weights" progress bar or its info and warning lines
    (errors still show); the previous settings come back afterwards."""
    from transformers.utils import logging as hf_logging

    bar, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bar:
            hf_logging.enable_progress_bar()
