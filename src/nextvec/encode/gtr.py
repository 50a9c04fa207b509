"""GTR-T5 as vec2text expects it.

vec2text's `gtr-base` corrector was trained on the T5 *encoder* of sentence-transformers/gtr-t5-base,
mean-pooled over non-padding tokens, with NO Dense projection and no normalisation. The
SentenceTransformer GTR pipeline adds a Dense layer (and normalises); its vectors invert to gibberish.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from nextvec.encode.base import quiet_loading
from nextvec.errors import NextvecError


def masked_mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, L, H), (B, L) -> (B, H): mean over the positions where the mask is 1."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


class GTREncoder:
    def __init__(self, name_or_path: str, normalize: bool = False, device: str = "cpu", max_length: int = 128,
                 model=None, tokenizer=None):
        if model is None or tokenizer is None:
            model, tokenizer = _load(name_or_path)
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.name = name_or_path
        self.normalize = normalize
        self.max_length = max_length
        self.dim = int(self.model.config.d_model)

    def encode(self, texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")  # batch by length: little padding
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                idx = order[s : s + batch_size]
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                v = masked_mean_pool(hidden, batch["attention_mask"])
                if self.normalize:
                    v = torch.nn.functional.normalize(v, dim=-1)
                out[idx] = v.float().cpu().numpy()
        return out

    def fingerprint(self) -> dict:
        import transformers

        return {
            "name": "gtr-t5-vec2text:" + os.path.basename(self.name.rstrip("/")),
            "dim": self.dim,
            "pooling": "masked-mean (T5 encoder, no Dense)",
            "normalized": self.normalize,
            "version": f"transformers {transformers.__version__}",
        }


def _load(name_or_path: str):
    """Load tokenizer + T5 encoder from a local folder, the HF cache, or (online only) the hub."""
    from transformers import AutoTokenizer, T5EncoderModel

    local_only = os.path.isdir(name_or_path) or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        with quiet_loading():
            tok = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
            model = T5EncoderModel.from_pretrained(name_or_path, local_files_only=local_only)
    except (OSError, ValueError) as e:
        raise NextvecError(
            f"could not load GTR-T5 from {name_or_path!r} ({e.__class__.__name__}). Offline, download "
            f"sentence-transformers/gtr-t5-base on an online machine (`hf download "
            f"sentence-transformers/gtr-t5-base --local-dir DIR`), copy DIR here and pass --encoder gtr:DIR"
        ) from e
    return model, tok
