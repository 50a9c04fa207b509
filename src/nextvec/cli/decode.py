"""`nextvec decode`: vectors (or texts, or store chunks) -> text, with the decoder a spec names."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nextvec.cli.options import flag
from nextvec.decode.spec import SPEC_HELP
from nextvec.options import DecoderOptions


def decode_cmd(
    store: Path = typer.Option(..., "--store", help="the concept store (its chunks are the retrieval candidates)"),
    vectors: Path | None = typer.Option(None, "--vectors", help=".npy file of (N, D) float vectors to decode"),
    texts: list[str] | None = typer.Option(None, "--text", help="encode this text with the store's encoder, then decode"),
    chunks: list[int] | None = typer.Option(None, "--chunk", help="decode the vector of this store chunk id"),
    k: int = typer.Option(3, "--k", min=1, help="candidates per vector"),
    decoder: str = typer.Option("retrieval", "--decoder", help=SPEC_HELP),
    split: str | None = flag(DecoderOptions, "split", "--split"),
    index_kind: str = flag(DecoderOptions, "index_kind", "--index"),
    steps: int | None = flag(DecoderOptions, "steps", "--steps", min=0),
    beam: int = flag(DecoderOptions, "beam", "--beam", min=0),
    online: bool = flag(DecoderOptions, "online", "--online"),
    device: str = flag(DecoderOptions, "device", "--device"),
    round_trip: bool = typer.Option(False, "--round-trip", help="also report cosine(vector, encode(top-1 text))"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Turn vectors back into text.

    With the decoder --decoder names: retrieval (nearest store chunks, any encoder), vec2text[:PATH] (GTR
    vec2text stores) or learned:PATH (`nextvec train-decoder`).

    Give exactly one of --vectors, --text (repeatable) or --chunk (repeatable).
    """
    from nextvec.decode.spec import decoder_name, load_decoder
    from nextvec.errors import NextvecError
    from nextvec.session import open_encoder
    from nextvec.store import open_store

    st = open_store(store)
    if sum(x is not None and x != [] for x in (vectors, texts, chunks)) != 1:
        raise NextvecError("give exactly one of --vectors FILE.npy, --text TEXT or --chunk ID")
    encoder = open_encoder(st) if texts or round_trip or decoder.startswith("learned") else None
    v, sources = _inputs(st, encoder, vectors, texts, chunks)
    options = DecoderOptions(split=split, index_kind=index_kind, steps=steps, beam=beam, online=online, device=device)
    dec = load_decoder(decoder, st, encoder, options)
    out = dec.decode(v, k=k)
    rt = None
    if round_trip:
        from nextvec.decode.base import round_trip_cosine

        rt = round_trip_cosine(encoder, v, [c[0][0] if c else "" for c in out]).tolist()
    rows = [{"source": src, "candidates": [{"text": t, "score": s} for t, s in cands],
             **({"round_trip_cosine": rt[i]} if rt is not None else {})}
            for i, (src, cands) in enumerate(zip(sources, out))]
    if as_json:
        typer.echo(json.dumps({"decoder": decoder_name(dec), "results": rows}, indent=2))
        return
    typer.echo(f"decoder: {decoder_name(dec)}")
    for i, r in enumerate(rows):
        head = f"[{i}]" + (f" {r['source']}" if r["source"] is not None else "")
        typer.echo(head + (f"   (round trip {r['round_trip_cosine']:.3f})" if rt is not None else ""))
        for c in r["candidates"]:
            typer.echo(f"    {c['score']:.3f}  {c['text']}")


def _inputs(st, encoder, vectors, texts, chunks):
    """The vectors to decode (N, D) and what each came from (a text, a chunk's text, or None)."""
    import numpy as np

    from nextvec.errors import NextvecError

    if texts:
        return encoder.encode(list(texts)), list(texts)
    if chunks:
        bad = [c for c in chunks if not 0 <= c < len(st)]
        if bad:
            raise NextvecError(f"chunk ids {bad} are outside the store (0..{len(st) - 1})")
        return st.get(np.asarray(chunks)), st.texts(chunks)
    try:
        v = np.load(vectors, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise NextvecError(f"cannot read {vectors} as a .npy array: {e}") from e
    return v, [None] * len(v) if v.ndim == 2 else []
