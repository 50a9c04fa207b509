"""One decoder spec string, understood by every command and the server:

    retrieval          nearest chunk texts of the store by cosine (any encoder; exact: a store vector decodes to its text)
    vec2text[:PATH]    vec2text's GTR corrector (GTR vec2text stores only; PATH: a local Hugging Face cache with its weights)
    learned:PATH       a decoder trained with `nextvec train-decoder` (a DECODER folder or checkpoint file)

`load_decoder(spec, store, encoder)` builds it, checks it against the store's encoder fingerprint and tags
it with `.spec` (what the /decode and /generate responses report as the decoder that answered).
"""

from __future__ import annotations

from nextvec.errors import NextvecError
from nextvec.options import SPEC_HELP, DecoderOptions

KINDS = ("retrieval", "vec2text", "learned")


def parse_decoder_spec(spec: str) -> tuple[str, str | None]:
    """'learned:runs/dec' -> ('learned', 'runs/dec'); refuses an unknown kind or a missing/extra path."""
    if not isinstance(spec, str) or not spec.strip():
        raise NextvecError(f"empty decoder spec; use {SPEC_HELP}")
    kind, colon, path = spec.strip().partition(":")
    if kind not in KINDS:
        raise NextvecError(f"unknown decoder {spec!r}; use {SPEC_HELP}")
    if kind == "retrieval" and colon:
        raise NextvecError(f"decoder {spec!r}: retrieval takes no path (it decodes into the store); use --split to narrow it")
    if kind == "learned" and not path:
        raise NextvecError(f"decoder {spec!r}: give the decoder folder, as learned:PATH")
    return kind, (path or None)


def load_decoder(spec: str, store, encoder=None, options: DecoderOptions | None = None):
    """Build the decoder `spec` names for `store` (see the module docstring). `encoder` is the store's
    encoder: the learned decoder uses it for correction steps, sampled hypotheses and round-trip scores."""
    kind, path = parse_decoder_spec(spec)
    o = options or DecoderOptions()
    if kind == "retrieval":
        from nextvec.decode.nearest import RetrievalDecoder

        decoder = RetrievalDecoder(store, split=o.split, index_kind=o.index_kind)
    elif kind == "vec2text":
        from nextvec.decode.vec2text import Vec2TextDecoder

        decoder = Vec2TextDecoder(store, num_steps=20 if o.steps is None else o.steps, sequence_beam_width=o.beam, cache_dir=path,
                                  allow_online=o.online, encoder=encoder)
    else:
        from nextvec.decode.learned import LearnedDecoder

        # with the encoder, candidates are scored by round-trip cosine (comparable to retrieval's cosine)
        decoder = LearnedDecoder.load(path, encoder=encoder, device=o.device,
                                       steps=o.steps or 0, no_repeat_ngram=o.no_repeat_ngram, samples=o.samples, seed=o.seed)
        decoder.check_store(store)  # a decoder trained for another encoder is refused
    decoder.spec = spec.strip()
    return decoder


def attach_decoder(session, decoder, options: DecoderOptions | None = None):
    """Give `session` its decoder: a spec (built by `load_decoder` for the session's store and encoder) or
    an object with decode(vectors, k) (named by its class in responses). Returns the decoder."""
    if isinstance(decoder, str):
        decoder = load_decoder(decoder, session.store, session.encoder, options)
    elif not getattr(decoder, "spec", None):
        decoder.spec = type(decoder).__name__
    session.decoder = decoder
    return decoder


def decoder_name(decoder) -> str:
    """What a response reports as the decoder that answered: its spec, else its class name."""
    return getattr(decoder, "spec", None) or type(decoder).__name__
