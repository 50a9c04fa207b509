"""text -> chunks -> vectors -> concept store, resumable.

Records are consumed in the source's stable order; every shard holds whole documents and records how
many source records it covers, so a rerun after a kill skips exactly those and continues.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from pydantic import Field, field_validator

from nextvec.config import StoreOptions
from nextvec.corpus import CORPORA, get_corpus
from nextvec.encode import Encoder, load_encoder
from nextvec.errors import NextvecError
from nextvec.store import ConceptStore, StoreWriter
from nextvec.store.card import ensure_card
from nextvec.text import DEFAULT_SPLITTER, SPLITTERS, Skipped, get_splitter, merge_letterless, read_documents
from nextvec.text.readers import count_records
from nextvec.text.chunking import document_pieces

HYGIENE_RULE = "a chunk with no letter or digit is merged into its neighbour in the same document"


class IngestOptions(StoreOptions):
    """Everything `ingest` takes besides the source and the store folder; `nextvec ingest` builds it.

    `splitter` and its version are ingest parameters recorded in the manifest with max_chars, split, seed and
    dtype, so a store is never resumed with, or mixed with chunks of, another one."""

    encoder: str = Field("minilm", description="minilm (embedded default) | st:NAME_OR_PATH | gtr[:PATH] | "
                                               "gtr-l2[:PATH]")
    max_chars: int = Field(400, description="Cap on chunk length; longer sentences split at clause/word boundaries.")
    splitter: str = Field(DEFAULT_SPLITTER, description=f"Sentence splitter: {' | '.join(SPLITTERS)}. Recorded in "
                                                        "the store; stores split differently are never mixed.")
    shard_chunks: int = Field(2048, ge=1, description="Chunks per durable shard: a kill loses at most one shard of "
                                                      "work.")
    batch_size: int = Field(64, description="Encoder batch size (raise it on a GPU, e.g. 512).")
    device: str = Field("cpu", description="cpu | cuda (every GPU) | cuda:N | cuda:N,M: fp16 on GPUs, several "
                                           "GPUs through a multi-process pool.")

    @field_validator("max_chars")
    @classmethod
    def _chunks_hold_a_word(cls, value: int) -> int:
        if value < 8:
            raise NextvecError(f"--max-chars must be at least 8, got {value}")
        return value


def resolve_source(source: str, splitter: str = DEFAULT_SPLITTER) -> Path:
    """A demo corpus name (fetched, split by `splitter` and cached on first use) or a path."""
    return get_corpus(source, splitter=splitter) if source in CORPORA else Path(source)


def ingest(source: str, out: str | Path, options: IngestOptions | None = None, encoder: Encoder | None = None,
           log=None) -> dict:
    """Ingest `source` into the store at `out` (resuming if `out` holds an interrupted ingest).

    `encoder`: an encoder already loaded, used instead of loading `options.encoder`.
    Returns a summary: the store's `summary()` plus `skipped` (count), `letterless_merged` and `seconds`.
    """
    o = options or IngestOptions()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    split_by = get_splitter(o.splitter)  # an unknown name fails before any work
    path = resolve_source(source, o.splitter)
    records = read_documents(path)  # validates the source before the encoder loads
    enc = encoder if encoder is not None else load_encoder(o.encoder, device=o.device)
    try:
        return _ingest_records(source, path, out, records, enc, o, log, split_by)
    finally:
        if encoder is None and hasattr(enc, "close"):  # stop a GPU pool we started
            enc.close()


def _ingest_records(source, path: Path, out, records, enc: Encoder, o: IngestOptions, log, split_by) -> dict:
    params = {"source": source if source in CORPORA else str(path.resolve()), "max_chars": o.max_chars,
              "split": list(o.split), "seed": o.seed, "dtype": o.dtype, "splitter": split_by.fingerprint()}
    writer = StoreWriter(out, enc.fingerprint(), params, dtype=o.dtype)
    t0 = time.perf_counter()
    skipped = 0
    if writer.complete:
        log(f"{out} is already complete; nothing to do")
    else:
        if writer.source_consumed:
            log(f"resuming: {writer.chunks_written} chunks from {writer.source_consumed} source records already stored")
        skipped = _write_records(writer, enc, records, o, count_records(path))
        if writer.chunks_written == 0:
            raise NextvecError(f"{source} held no usable document ({skipped} skipped)")
        writer.finalize(o.split, o.seed)
    store = ConceptStore(out)
    ensure_card(store)
    summary = store.summary()
    summary.update(skipped=skipped, seconds=round(time.perf_counter() - t0, 2))
    log(f"chunk hygiene: {HYGIENE_RULE}; {summary['letterless_merged']} merged")
    if skipped:
        log(f"{skipped} records skipped (see the warnings above)")
    return summary


def _write_records(writer: StoreWriter, enc: Encoder, records, o: IngestOptions, total: int | None = None) -> int:
    """Chunk, encode and append, a shard at a time, every record after those the store already holds; the
    bar counts documents against `total` (its ETA) and shows the chunks stored. Returns how many records
    were skipped."""
    from tqdm import tqdm

    bar = tqdm(desc="ingest", unit=" docs", total=total, initial=writer.source_consumed, disable=not o.progress,
               file=sys.stderr, dynamic_ncols=True)
    pending: list[tuple[str, list[str]]] = []
    start = last = writer.source_consumed
    n_pending = merged = skipped = 0
    for i, rec in enumerate(records):
        if i < start:
            continue
        last = i + 1
        chunks, gone = ([], 0) if isinstance(rec, Skipped) else merge_letterless(
            document_pieces(rec, o.max_chars, o.splitter), o.max_chars)
        if not chunks:
            skipped += 1
            why = f"{rec.where}: {rec.reason}" if isinstance(rec, Skipped) else f"{rec.id}: no letter or digit"
            bar.write(f"warning: skipped {why}", file=sys.stderr)
            continue
        merged += gone
        pending.append((rec.id, chunks))
        n_pending += len(chunks)
        if n_pending >= o.shard_chunks:
            _flush(writer, enc, pending, last, o.batch_size, merged)
            _advance(bar, writer)
            pending, n_pending, merged = [], 0, 0
    if pending or last > writer.source_consumed:
        _flush(writer, enc, pending, last, o.batch_size, merged)
        _advance(bar, writer)
    bar.close()
    return skipped


def _advance(bar, writer: StoreWriter) -> None:
    """Move the bar to the documents the store now holds; show its chunks."""
    bar.update(writer.source_consumed - bar.n)
    bar.set_postfix(chunks=writer.chunks_written, refresh=False)


def _flush(writer: StoreWriter, enc: Encoder, docs, source_end: int, batch_size: int, merged: int) -> None:
    texts = [c for _, chunks in docs for c in chunks]
    vectors = enc.encode(texts, batch_size=batch_size) if texts else np.zeros((0, writer.dim), np.float32)
    if vectors.shape[1:] != (writer.dim,):
        raise NextvecError(f"encoder produced {vectors.shape[1:]} vectors, the store holds {writer.dim}-d")
    writer.add_shard(docs, vectors, source_end, letterless_merged=merged)
