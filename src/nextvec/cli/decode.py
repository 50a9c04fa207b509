"""`nextvec decode`: vectors (or texts, or store chunks) -> text, with the retrieval or vec2text decoder."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def decode_cmd(
    store: Path = typer.Option(..., "--store", help="the concept store (its chunks are the retrieval candidates)"),
    vectors: Path | None = typer.Option(None, "--vectors", help=".npy file of (N, D) float vectors to decode"),
    texts: list[str] | None = typer.Option(None, "--text", help="encode this text with the store's encoder, then decode"),
    chunks: list[int] | None = typer.Option(None, "--chunk", help="decode the vector of this store chunk id"),
    k: int = typer.Option(3, "--k", min=1, help="candidates per vector"),
    decoder: str = typer.Option("retrieval", "--decoder", help="retrieval | vec2text (GTR vec2text stores only)"),
    split: str | None = typer.Option(None, "--split", help="retrieval: only this split's chunks"),
    index_kind: str = typer.Option("auto", "--index", help="retrieval: auto (exact up to 1M chunks, IVF above) | flat | ivf | hnsw"),
    num_steps: int = typer.Option(20, "--num-steps", help="vec2text: correction steps (0 = hypothesis only)"),
    beam: int = typer.Option(0, "--beam", help="vec2text: sequence beam width"),
    vec2text_cache: Path | None = typer.Option(None, "--vec2text-cache", help="vec2text: local Hugging Face cache with the weights"),
    vec2text_online: bool = typer.Option(False, "--vec2text-online", help="vec2text: allow downloading the weights"),
    round_trip: bool = typer.Option(False, "--round-trip", help="also report cosine(vector, encode(top-1 text))"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Turn vectors back into text.

    Nearest store chunks (any encoder) or vec2text inversion (GTR stores).

    Give exactly one of --vectors, --text (repeatable) or --chunk (repeatable).
    """
    import numpy as np

    from nextvec.errors import NextvecError
    from nextvec.store import open_store

    st = open_store(store)
    if sum(x is not None and x != [] for x in (vectors, texts, chunks)) != 1:
        raise NextvecError("give exactly one of --vectors FILE.npy, --text TEXT or --chunk ID")
    encoder = None
    if texts:
        from nextvec.generate import store_encoder

        encoder = store_encoder(st)
        v, sources = encoder.encode(list(texts)), list(texts)
    elif chunks:
        bad = [c for c in chunks if not 0 <= c < len(st)]
        if bad:
            raise NextvecError(f"chunk ids {bad} are outside the store (0..{len(st) - 1})")
        v, sources = st.get(np.asarray(chunks)), st.texts(chunks)
    else:
        try:
            v = np.load(vectors, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise NextvecError(f"cannot read {vectors} as a .npy array: {e}") from e
        sources = [None] * len(v) if v.ndim == 2 else []
    if decoder == "retrieval":
        from nextvec.decode.nearest import RetrievalDecoder

        dec = RetrievalDecoder(st, split=split, index_kind=index_kind)
    elif decoder == "vec2text":
        from nextvec.decode.vec2text import Vec2TextDecoder

        dec = Vec2TextDecoder(st, num_steps=num_steps, sequence_beam_width=beam, cache_dir=vec2text_cache,
                              allow_online=vec2text_online)
    else:
        raise NextvecError(f"unknown decoder {decoder!r}; use retrieval or vec2text")
    out = dec.decode(v, k=k)
    rt = None
    if round_trip:
        from nextvec.decode import round_trip_cosine
        from nextvec.generate import store_encoder

        encoder = encoder or store_encoder(st)
        rt = round_trip_cosine(encoder, v, [c[0][0] if c else "" for c in out]).tolist()
    rows = [{"source": src, "candidates": [{"text": t, "score": s} for t, s in cands],
             **({"round_trip_cosine": rt[i]} if rt is not None else {})}
            for i, (src, cands) in enumerate(zip(sources, out))]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for i, r in enumerate(rows):
        head = f"[{i}]" + (f" {r['source']}" if r["source"] is not None else "")
        typer.echo(head + (f"   (round trip {r['round_trip_cosine']:.3f})" if rt is not None else ""))
        for c in r["candidates"]:
            typer.echo(f"    {c['score']:.3f}  {c['text']}")


def register(app: typer.Typer) -> None:
    app.command("decode")(decode_cmd)
