"""text -> chunks -> vectors -> concept store, resumable.

Records are consumed in the source's stable order; every shard holds whole documents and records how
many source records it covers, so a rerun after a kill skips exactly those and continues.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from nextvec.corpus import CORPORA, get_corpus
from nextvec.encode import Encoder, load_encoder
from nextvec.errors import NextvecError
from nextvec.store import ConceptStore, StoreWriter
from nextvec.text import Skipped, document_chunks, read_documents


def resolve_source(source: str) -> Path:
    """A demo corpus name (fetched and cached on first use) or a path."""
    return get_corpus(source) if source in CORPORA else Path(source)


def ingest(
    source: str,
    out: str | Path,
    encoder: str | Encoder = "minilm",
    max_chars: int = 400,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    dtype: str = "float32",
    shard_chunks: int = 2048,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    log=None,
) -> dict:
    """Ingest `source` into the store at `out` (resuming if `out` holds an interrupted ingest).

    `device`: cpu | cuda | cuda:N | cuda:N,M (fp16 on GPUs, several through a multi-process pool).
    Returns a summary: the store's `summary()` plus `skipped` (count) and `seconds`.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if max_chars < 8:
        raise NextvecError(f"--max-chars must be at least 8, got {max_chars}")
    path = resolve_source(source)
    records = read_documents(path)  # validates the source before the encoder loads
    enc = load_encoder(encoder, device=device) if isinstance(encoder, str) else encoder
    try:
        return _ingest_records(source, out, records, enc, max_chars, split, seed, dtype, shard_chunks,
                               batch_size, progress, log)
    finally:
        if isinstance(encoder, str) and hasattr(enc, "close"):  # stop a GPU pool we started
            enc.close()


def _ingest_records(source, out, records, enc: Encoder, max_chars, split, seed, dtype, shard_chunks,
                    batch_size, progress, log) -> dict:
    path = resolve_source(source)
    params = {"source": source if source in CORPORA else str(path.resolve()), "max_chars": max_chars,
              "split": list(split), "seed": seed, "dtype": dtype}
    writer = StoreWriter(out, enc.fingerprint(), params, dtype=dtype)
    t0 = time.perf_counter()
    skipped = 0
    if writer.complete:
        log(f"{out} is already complete; nothing to do")
    else:
        start = writer.source_consumed
        if start:
            log(f"resuming: {writer.chunks_written} chunks from {start} source records already stored")
        from tqdm import tqdm

        bar = tqdm(desc="ingest", unit=" chunks", disable=not progress, file=sys.stderr, dynamic_ncols=True)
        bar.update(writer.chunks_written)
        pending: list[tuple[str, list[str]]] = []
        n_pending = 0
        last = start
        for i, rec in enumerate(records):
            if i < start:
                continue
            last = i + 1
            if isinstance(rec, Skipped):
                skipped += 1
                bar.write(f"warning: skipped {rec.where}: {rec.reason}", file=sys.stderr)
                continue
            chunks = document_chunks(rec, max_chars)
            if not chunks:
                skipped += 1
                bar.write(f"warning: skipped {rec.id}: no text after sentence splitting", file=sys.stderr)
                continue
            pending.append((rec.id, chunks))
            n_pending += len(chunks)
            if n_pending >= shard_chunks:
                _flush(writer, enc, pending, last, batch_size)
                bar.update(n_pending)
                pending, n_pending = [], 0
        if pending or last > writer.source_consumed:
            _flush(writer, enc, pending, last, batch_size)
            bar.update(n_pending)
        bar.close()
        if writer.chunks_written == 0:
            raise NextvecError(f"{source} held no usable document ({skipped} skipped)")
        writer.finalize(split, seed)
    summary = ConceptStore(out).summary()
    summary.update(skipped=skipped, seconds=round(time.perf_counter() - t0, 2))
    if skipped:
        log(f"{skipped} records skipped (see the warnings above)")
    return summary


def _flush(writer: StoreWriter, enc: Encoder, docs, source_end: int, batch_size: int) -> None:
    texts = [c for _, chunks in docs for c in chunks]
    vectors = enc.encode(texts, batch_size=batch_size) if texts else np.zeros((0, writer.dim), np.float32)
    if vectors.shape[1:] != (writer.dim,):
        raise NextvecError(f"encoder produced {vectors.shape[1:]} vectors, the store holds {writer.dim}-d")
    writer.add_shard(docs, vectors, source_end)
