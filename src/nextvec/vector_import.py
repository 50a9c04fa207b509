"""Import vectors computed elsewhere (Parquet) into a concept store, streaming and resumable.

The contract (see the README): a Parquet file, or a folder of them read in sorted name order, with columns
`doc_id` (string), `text` (string) and a vector column (list or fixed-size list of float16/float32). Each
document's rows are contiguous and in chunk order; a document may run on from the end of one file into
the start of the next (the files are one sequence), but may not reappear after another document started.

Rows are read in batches (pyarrow `iter_batches`, buffered column reads), so memory holds one batch, one
shard and the set of document ids already seen, whatever the file size. Shards hold whole documents and
record how many source rows they cover, so a rerun after a kill skips exactly those rows. Every batch is
checked before any of it is written (nulls, dimension, NaN/inf, normalisation, document order): a refusal
names the file and row and leaves only complete shards behind.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
from pydantic import Field

from nextvec.config import StoreOptions
from nextvec.errors import NextvecError
from nextvec.integrity import digest
from nextvec.readahead import ReadAhead
from nextvec.store import ConceptStore, StoreWriter
from nextvec.store.card import ensure_card
from nextvec.store.format import read_manifest

ID_COLUMN, TEXT_COLUMN = "doc_id", "text"
NORM_TOLERANCE = 1e-2  # |norm - 1| allowed for vectors declared normalised (float16 storage rounds ~1e-3)


def parquet_files(source: str | Path) -> list[Path]:
    """A .parquet file, or the .parquet files of a folder in sorted name order."""
    path = Path(source)
    if path.is_file() and path.suffix == ".parquet":
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".parquet")
        if files:
            return files
        raise NextvecError(f"{path} holds no .parquet files")
    raise NextvecError(f"--vectors imports a .parquet file or a folder of them; {source} is neither")


IDENTITY_BYTES = 1 << 20


def file_identity(path: Path) -> list:
    """[name, size, hash of its first and last MiB] of an input file: a Parquet file's footer (schema, row
    groups, column statistics) and first pages. A file rewritten under a resumed import is told apart by
    this, not by name and size alone; a change confined to the middle of a file over 2 MiB is not."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(IDENTITY_BYTES)
        f.seek(max(size - IDENTITY_BYTES, 0))
        tail = f.read(IDENTITY_BYTES)
    return [path.name, size, digest([head, tail])]


def _check_inputs_unchanged(out: str | Path, files: list) -> None:
    """Refuse to resume (or rerun) an import whose input files changed since it started, naming one."""
    manifest = read_manifest(Path(out)) if Path(out).is_dir() else None
    before = (manifest or {}).get("params", {}).get("files")
    if before is None or before == files:
        return
    old = {f[0]: f for f in before}
    changed = [f[0] for f in files if old.get(f[0]) != f] + [name for name in old if name not in {f[0] for f in files}]
    raise NextvecError(f"the input of {out} changed since it was imported: {', '.join(changed[:3])} "
                       f"{'is' if len(changed) == 1 else 'are'} not the file{'s' if len(changed) > 1 else ''} it read "
                       f"(content, size or name); import into a new folder")


def fingerprint_for(name: str, dim: int, normalized: bool) -> dict:
    """The declared fingerprint of imported vectors: pooling is unknown (None), so checks skip it."""
    return {"name": name, "dim": int(dim), "pooling": None, "normalized": bool(normalized), "version": "imported"}


@dataclass
class Batch:
    """Validated rows of one source batch. `row` is the global index of its first row."""

    row: int
    ids: np.ndarray  # (n,) object, str
    texts: list[str]
    vectors: np.ndarray  # (n, D) in the store's dtype


@dataclass
class Pending:
    """Rows read but not yet written: whole documents, then the start of the current document."""

    ids: list[str] = field(default_factory=list)  # one per document started
    counts: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    blocks: list[np.ndarray] = field(default_factory=list)
    rows: int = 0


class ImportOptions(StoreOptions):
    """Everything `import_vectors` takes besides the source and the store folder; `nextvec ingest --vectors`
    builds it. encoder_name and the normalisation (normalized, or l2_normalize) must be given."""

    column: str = Field("vector", description="the Parquet column holding the vectors (a list of float16 or "
                                              "float32 per row)")
    encoder_name: str | None = Field(None, description="the name of the model that made them (stored as the "
                                                       "fingerprint; later use must match).")
    normalized: bool | None = Field(None, description="declare whether they are unit length (--normalized is "
                                                      "checked per vector).")
    l2_normalize: bool = Field(False, description="L2-normalise them on import.")
    shard_chunks: int = Field(50_000, ge=1, description="Chunks per durable shard: a kill loses at most one shard "
                                                        "of work.")
    batch_rows: int = Field(8192, ge=1, description="Parquet rows read (and checked) per batch")

    @property
    def normalize_mode(self) -> str:
        """l2 (normalised on import) | declared-unit (checked) | none, as the manifest records it."""
        return "l2" if self.l2_normalize else ("declared-unit" if self.normalized else "none")


def import_vectors(source: str | Path, out: str | Path, options: ImportOptions, log=None) -> dict:
    """Import `source` into the store at `out` (resuming an interrupted import). Returns the store summary
    plus `skipped` (always 0: bad rows are refused, not skipped), `seconds` and `vectors_per_s`."""
    o = options
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not o.encoder_name:
        raise NextvecError("--vectors needs --encoder-name NAME: the name of the model that computed the vectors")
    if o.normalized is None and not o.l2_normalize:
        raise NextvecError("declare the vectors' normalisation: --normalized (unit length, checked), "
                           "--not-normalized, or --l2-normalize (normalise on import)")
    files = parquet_files(source)
    dim = _vector_dim(files[0], o.column)
    mode = o.normalize_mode
    params = {"source": str(Path(source).resolve()), "files": [file_identity(p) for p in files],
              "vectors": o.column, "normalize": mode, "split": list(o.split), "seed": o.seed, "dtype": o.dtype}
    _check_inputs_unchanged(out, params["files"])
    writer = StoreWriter(out, fingerprint_for(o.encoder_name, dim, mode != "none"), params, dtype=o.dtype)
    t0 = time.perf_counter()
    if writer.complete:
        log(f"{out} is already complete; nothing to do")
    else:
        start = writer.source_consumed
        if start:
            log(f"resuming: {writer.chunks_written} vectors from {start} source rows already stored")
        _stream_into(writer, files, o, start)
        writer.finalize(o.split, o.seed)
    store = ConceptStore(out)
    ensure_card(store)
    seconds = time.perf_counter() - t0
    summary = store.summary()
    summary.update(skipped=0, seconds=round(seconds, 2), vectors_per_s=round(summary["chunks"] / max(seconds, 1e-9)))
    return summary


def _stream_into(writer: StoreWriter, files: list[Path], o: ImportOptions, start: int) -> None:
    from tqdm import tqdm

    seen = _ids_before(files, start)
    pending = Pending()
    bar = tqdm(desc="import", unit=" vectors", disable=not o.progress, file=sys.stderr, dynamic_ncols=True,
               unit_scale=True, initial=start)
    end = start
    # Parquet decoding and validation run one thread ahead of the shard writes (both mostly outside the GIL)
    batches = ReadAhead(_batches(files, o.column, writer.dim, o.normalize_mode, start, o.batch_rows, o.dtype), ahead=2)
    try:
        for where, batch in batches:
            _take(pending, batch, seen, where)
            end = batch.row + len(batch.texts)
            complete_rows = pending.rows - pending.counts[-1]
            if complete_rows >= o.shard_chunks:
                _flush(writer, pending, complete_rows, end - pending.counts[-1])
            bar.update(len(batch.texts))
    finally:
        batches.stop()
    if pending.rows:
        _flush(writer, pending, pending.rows, end)
    bar.close()
    if writer.chunks_written == 0:
        raise NextvecError(f"{files[0].parent if len(files) > 1 else files[0]} holds no rows")


def _take(pending: Pending, batch: Batch, seen: set[str], where) -> None:
    """Append a batch to `pending`, refusing a document that reappears after another one started."""
    ids = batch.ids
    starts = np.flatnonzero(ids[1:] != ids[:-1]) + 1 if len(ids) > 1 else np.zeros(0, np.int64)
    bounds = [0, *starts.tolist(), len(ids)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        doc = ids[a]
        if pending.ids and pending.ids[-1] == doc and a == 0:
            pending.counts[-1] += b - a  # the current document continues
            continue
        if doc in seen:
            raise NextvecError(
                f"document {doc!r} reappears at {where(a)} after other documents: each document's rows must be "
                f"contiguous (a document may run on into the next file, not come back later); nothing of this "
                f"batch was written")
        if pending.ids:
            seen.add(pending.ids[-1])
        pending.ids.append(doc)
        pending.counts.append(b - a)
    pending.texts.extend(batch.texts)
    pending.blocks.append(batch.vectors)
    pending.rows += len(batch.texts)


def _flush(writer: StoreWriter, pending: Pending, n_rows: int, source_end: int) -> None:
    """Write the first `n_rows` pending rows (whole documents) as one shard; keep the rest pending."""
    vectors = np.concatenate(pending.blocks)
    n_docs = len(pending.ids) if n_rows == pending.rows else len(pending.ids) - 1
    docs, row = [], 0
    for doc, count in zip(pending.ids[:n_docs], pending.counts[:n_docs]):
        docs.append((doc, pending.texts[row : row + count]))
        row += count
    writer.add_shard(docs, vectors[:n_rows], source_end)
    pending.ids, pending.counts = pending.ids[n_docs:], pending.counts[n_docs:]
    pending.texts = pending.texts[n_rows:]
    pending.blocks = [vectors[n_rows:]] if n_rows < pending.rows else []
    pending.rows -= n_rows


def _open(path: Path):
    import pyarrow.parquet as pq

    try:
        # buffered column reads without pre-buffering: memory follows the batch, not whole row groups
        return pq.ParquetFile(path, buffer_size=1 << 22, pre_buffer=False)
    except Exception as e:  # pyarrow raises several types for damaged files
        raise NextvecError(f"cannot read Parquet file {path}: {e}") from e


def _vector_dim(path: Path, column: str) -> int:
    pf = _open(path)
    _check_schema(pf, path, column)
    first = next(pf.iter_batches(batch_size=1, columns=[column]), None)
    if first is None or first.num_rows == 0 or first.column(0)[0].as_py() is None:
        raise NextvecError(f"{path} holds no rows, or its first {column!r} is null")
    return len(first.column(0)[0].as_py())


def _check_schema(pf, path: Path, column: str) -> None:
    import pyarrow as pa

    schema = pf.schema_arrow
    for name in (ID_COLUMN, TEXT_COLUMN, column):
        if name not in schema.names:
            raise NextvecError(f"{path} has no column {name!r} (columns: {', '.join(schema.names)}); "
                               f"the import needs doc_id, text and the --vectors column")
    for name in (ID_COLUMN, TEXT_COLUMN):
        if not (pa.types.is_string(schema.field(name).type) or pa.types.is_large_string(schema.field(name).type)):
            raise NextvecError(f"{path}: column {name!r} is {schema.field(name).type}, expected string")
    t = schema.field(column).type
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not is_list or t.value_type not in (pa.float16(), pa.float32()):
        raise NextvecError(f"{path}: column {column!r} is {t}, expected a list of float16 or float32")


def _ids_before(files: list[Path], start: int) -> set[str]:
    """Document ids of the first `start` rows (already stored): a resumed import still refuses their return."""
    seen: set[str] = set()
    row = 0
    for path in files:
        if row >= start:
            break
        for b in _open(path).iter_batches(batch_size=65536, columns=[ID_COLUMN]):
            ids = b.column(0).to_pylist()[: start - row]
            seen.update(ids)
            row += len(ids)
            if row >= start:
                break
    return seen


def _batches(files: list[Path], column: str, dim: int, mode: str, start: int,
             batch_rows: int, dtype: str) -> Iterator[tuple[object, Batch]]:
    """Validated batches from global row `start` on, with a `where(i)` naming the file and row of row i."""
    offset = 0
    for path in files:
        pf = _open(path)
        _check_schema(pf, path, column)
        n_file = pf.metadata.num_rows
        if offset + n_file <= start:
            offset += n_file
            continue
        groups, file_row = [], 0
        for g in range(pf.metadata.num_row_groups):
            n_g = pf.metadata.row_group(g).num_rows
            if offset + file_row + n_g > start or groups:
                groups.append(g)
            else:
                file_row += n_g  # a whole row group already stored: not read at all
        for rb in pf.iter_batches(batch_size=batch_rows, row_groups=groups, columns=[ID_COLUMN, TEXT_COLUMN, column]):
            batch_first, file_row = file_row, file_row + rb.num_rows
            skip = max(0, start - (offset + batch_first))
            if skip >= rb.num_rows:
                continue
            first = batch_first + skip

            def where(i, path=path, first=first):
                return f"{path.name} row {first + i}"

            yield where, _validate(rb.slice(skip), dim, mode, offset + first, where, dtype)
        offset += n_file


def _validate(rb, dim: int, mode: str, row: int, where, dtype: str) -> Batch:
    """Arrow batch -> Batch (vectors cast to the store's `dtype`), refusing nulls, another dimension, NaN/inf
    and vectors that break the declared normalisation."""
    import pyarrow.compute as pc

    ids_col, text_col, vec_col = rb.column(0), rb.column(1), rb.column(2)
    for name, col in ((ID_COLUMN, ids_col), (TEXT_COLUMN, text_col), ("vector", vec_col)):
        if col.null_count:
            bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise NextvecError(f"null {name} at {where(bad)}")
    lengths = pc.list_value_length(vec_col).to_numpy(zero_copy_only=False)
    if (lengths != dim).any():
        bad = int(np.flatnonzero(lengths != dim)[0])
        raise NextvecError(f"vector at {where(bad)} has {lengths[bad]} dimensions, the store holds {dim}-d vectors")
    vectors = vec_col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(rb), dim)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        raise NextvecError(f"vector at {where(int(np.flatnonzero(~finite)[0]))} holds NaN or inf")
    vectors = _normalise(vectors, mode, where).astype(dtype, copy=False)
    ids = np.asarray(ids_col.to_pylist(), dtype=object)
    return Batch(row, ids, text_col.to_pylist(), vectors)


def _normalise(vectors: np.ndarray, mode: str, where) -> np.ndarray:
    if mode == "none":
        return vectors
    norms = np.linalg.norm(vectors, axis=1)
    if mode == "l2":
        if (norms == 0).any():
            raise NextvecError(f"vector at {where(int(np.flatnonzero(norms == 0)[0]))} is all zeros and cannot be "
                               f"L2-normalised")
        return vectors / norms[:, None]
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise NextvecError(f"vector at {where(i)} has norm {norms[i]:.4f} but --normalized declares unit vectors; "
                           f"use --l2-normalize to normalise on import, or --not-normalized")
    return vectors
