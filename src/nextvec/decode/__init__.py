"""Vectors -> text. Every decoder has one call (decode/base.py):

    decode(vectors (N, D) float32, k=1) -> list (N) of lists of up to k (text, score) candidates, best first

    RetrievalDecoder (nearest.py)   nearest chunk texts of a store by cosine (FAISS); any encoder
    Vec2TextDecoder (vec2text.py)   vec2text's gtr-base corrector; GTR vec2text stores only (extra nextvec[vec2text])
    LearnedDecoder (learned.py)    a learned decoder (`nextvec train-decoder`)

`spec.load_decoder(spec, store, encoder)` builds any of them from one spec string: retrieval |
vec2text[:PATH] | learned:PATH. `base.round_trip_cosine(encoder, vectors, texts)` measures how well decoded
texts land back on their vectors.
"""

from nextvec.decode.base import Decoder, check_query_vectors, round_trip_cosine
from nextvec.decode.spec import load_decoder

__all__ = ["Decoder", "check_query_vectors", "load_decoder", "round_trip_cosine"]
