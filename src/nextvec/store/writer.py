"""Append-only, resumable store writer.

Ingest hands over whole documents in source order, a shard at a time. A shard's vectors and texts are
appended to shards/vectors.bin and shards/texts.bin at the ends the manifest records, fsynced, its
document list written atomically, and only then is the manifest replaced to list it with the new ends.
A kill at any moment leaves a manifest that lists complete shards only (bytes past its ends are
overwritten by the next shard), so rerunning the same ingest skips the source records already consumed
and continues: no chunk is duplicated or lost. `finalize` writes the npy header into the space reserved at
the start of vectors.bin and renames both files into place (the vectors are written once, never copied),
draws the document-level split and the train statistics, and flips `complete` in the manifest last.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from nextvec.errors import NextvecError, check_fingerprint
from nextvec.store.format import (
    FORMAT_VERSION,
    MANIFEST,
    SHARDS,
    atomic_write_bytes,
    atomic_write_json,
    fsync_path,
    read_manifest,
    write_sealed_json,
)
from nextvec.integrity import IntegrityError, check_file, digest, hash_range

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def split_documents(n_docs: int, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """Assign each document to exactly one split: a seeded permutation cut by the fractions.

    Returns (n_docs,) int8 codes 0 train / 1 val / 2 test. When there are at least three documents,
    val and test each get at least one document if their fraction is positive.
    """
    fr = np.asarray(fractions, dtype=np.float64)
    if fr.shape != (3,) or (fr < 0).any() or abs(fr.sum() - 1.0) > 1e-6:
        raise NextvecError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    n_val = int(round(fr[1] * n_docs))
    n_test = int(round(fr[2] * n_docs))
    if n_docs >= 3:
        n_val = max(n_val, 1 if fr[1] > 0 else 0)
        n_test = max(n_test, 1 if fr[2] > 0 else 0)
    n_val = min(n_val, n_docs)
    n_test = min(n_test, n_docs - n_val)
    codes = np.zeros(n_docs, dtype=np.int8)
    perm = np.random.default_rng(seed).permutation(n_docs)
    codes[perm[n_docs - n_val - n_test : n_docs - n_test]] = 1
    codes[perm[n_docs - n_test :]] = 2
    return codes


class StoreWriter:
    """Writes (or resumes writing) a concept store at `root`.

    Args:
        root: the store folder.
        fingerprint: the encoder's fingerprint; a store is never written by two encoders.
        params: ingest parameters that must match on resume (source, max_chars, split, seed, dtype).
    """

    def __init__(self, root: str | Path, fingerprint: dict, params: dict, dtype: str = "float32"):
        if dtype not in ("float32", "float16"):
            raise NextvecError(f"vector dtype must be float32 or float16, got {dtype!r}")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NextvecError(f"{self.root} exists and is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NextvecError(f"cannot create store folder {self.root}: {e.strerror}") from e
        self.dtype = dtype
        manifest = read_manifest(self.root)
        if manifest is None:
            manifest = {
                "format_version": FORMAT_VERSION,
                "encoder": fingerprint,
                "dim": int(fingerprint["dim"]),
                "dtype": dtype,
                "params": params,
                "shards": [],
                "complete": False,
            }
        else:
            check_fingerprint(fingerprint, manifest["encoder"], f"the existing store at {self.root}")
            if manifest.get("params") != params:
                raise NextvecError(
                    f"{self.root} holds a store ingested with other parameters ({manifest.get('params')}); "
                    f"use a new --out folder, or rerun with the same source and options to resume"
                )
        if manifest["shards"] and "rows_end" not in manifest["shards"][-1] and not manifest["complete"]:
            raise NextvecError(f"{self.root} is an interrupted ingest written by an older nextvec (another shard "
                               f"format); ingest into a new --out folder")
        self.manifest = manifest
        self.dim = int(manifest["dim"])
        self.row_bytes = self.dim * np.dtype(manifest["dtype"]).itemsize
        if not self.complete:
            (self.root / SHARDS).mkdir(exist_ok=True)
            self._check_shards()

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    @property
    def source_consumed(self) -> int:
        """How many source records the listed shards cover (a resumed ingest skips this many)."""
        shards = self.manifest["shards"]
        return shards[-1]["source_end"] if shards else 0

    @property
    def chunks_written(self) -> int:
        return sum(s["chunks"] for s in self.manifest["shards"])

    def _save_manifest(self) -> None:
        write_sealed_json(self.root / MANIFEST, self.manifest)

    def _check_shards(self) -> None:
        """Before resuming, hash the shards this store keeps against what was written: a damaged one is named
        and nothing more is written."""
        for s, vectors, texts in self._shard_spans():
            if "vectors_xxh3" not in s:  # written by a nextvec that recorded no hashes
                continue
            for (part, final), (offset, length), h in (((VECTORS_PART, "vectors.npy"), vectors, s["vectors_xxh3"]),
                                                       ((TEXTS_PART, "texts.bin"), texts, s["texts_xxh3"])):
                path = self._part(part, final)
                if not path.is_file() or path.stat().st_size < offset + length:
                    problem = "shorter than its shards"
                elif hash_range(path, offset, length) != h:
                    problem = f"bytes {offset}..{offset + length} differ from those written"
                else:
                    continue
                raise IntegrityError(f"{path} is damaged in {s['name']} ({problem}); the store cannot be resumed: "
                                     f"ingest into a new --out folder")
            listing = self.root / SHARDS / f"{s['name']}.json"
            problem = check_file(listing, s["listing_xxh3"])
            if problem:
                raise IntegrityError(f"{listing} is damaged ({problem}); ingest into a new --out folder")

    def _shard_spans(self):
        """Each listed shard with its (offset, length) in the appended vectors file and in the texts file."""
        rows = text = 0
        for s in self.manifest["shards"]:
            yield (s, (HEADER_BYTES + rows * self.row_bytes, (s["rows_end"] - rows) * self.row_bytes),
                   (text, s["text_end"] - text))
            rows, text = s["rows_end"], s["text_end"]

    def _ends(self) -> tuple[int, int]:
        """Rows and text bytes the listed shards hold (where the next shard's bytes go)."""
        last = self.manifest["shards"][-1] if self.manifest["shards"] else {}
        return last.get("rows_end", 0), last.get("text_end", 0)

    def add_shard(self, docs: list[tuple[str, list[str]]], vectors: np.ndarray, source_end: int,
                  letterless_merged: int = 0) -> None:
        """Durably append whole documents and their chunk vectors (rows in document order).
        `letterless_merged` counts the chunk-hygiene merges made in these documents (kept in the manifest)."""
        if self.complete:
            raise NextvecError(f"{self.root} is already complete")
        n = sum(len(chunks) for _, chunks in docs)
        if vectors.shape != (n, self.dim):
            raise NextvecError(f"shard vectors have shape {vectors.shape}, expected ({n}, {self.dim})")
        if not np.isfinite(vectors).all():
            raise NextvecError("the encoder returned NaN or inf vectors; refusing to store them")
        name = f"shard-{len(self.manifest['shards']):05d}"
        encoded = [t.encode("utf-8") for _, chunks in docs for t in chunks]
        listing = {"ids": [d for d, _ in docs], "chunks": [len(c) for _, c in docs], "bytes": list(map(len, encoded))}
        rows, text_end = self._ends()
        rows_data = np.ascontiguousarray(vectors, dtype=self.dtype)
        texts = b"".join(encoded)
        try:
            _write_at(self.root / SHARDS / VECTORS_PART, HEADER_BYTES + rows * self.row_bytes, rows_data.view(np.uint8).reshape(-1))
            _write_at(self.root / SHARDS / TEXTS_PART, text_end, texts)
            listing_record = atomic_write_json(self.root / SHARDS / f"{name}.json", listing)
        except OSError as e:
            _cleanup_tmp(self.root / SHARDS)
            raise NextvecError(f"could not write {name} in {self.root}: {e.strerror}; the store still holds "
                               f"{self.chunks_written} chunks and resumes from there") from e
        self.manifest["shards"].append({"name": name, "docs": len(docs), "chunks": n, "source_end": int(source_end),
                                        "letterless_merged": int(letterless_merged), "rows_end": rows + n,
                                        "text_end": text_end + len(texts), "vectors_xxh3": digest(rows_data.data),
                                        "texts_xxh3": digest(texts), "listing_xxh3": listing_record})
        try:
            self._save_manifest()
        except OSError as e:
            self.manifest["shards"].pop()
            _cleanup_tmp(self.root)
            raise NextvecError(f"could not update the manifest of {self.root}: {e.strerror}") from e

    def finalize(self, fractions: tuple[float, float, float], seed: int) -> None:
        """Put the appended vectors and texts in place, split documents, compute train statistics, mark complete.

        Every per-chunk array is written in blocks of whole documents as it is made, and the statistics read
        the vectors back in blocks: memory holds per-document arrays and one block, never a per-chunk array."""
        if self.complete:
            return
        n, text_end = self._ends()
        if n == 0:
            raise NextvecError("no chunks were ingested: every document was empty or skipped")
        try:
            doc_ids, doc_lengths = self._documents()
            if int(doc_lengths.sum()) != n:
                raise NextvecError(f"the shard listings of {self.root} disagree with its manifest; re-ingest")
            doc_offsets = np.zeros(len(doc_ids) + 1, dtype=np.int64)
            np.cumsum(doc_lengths, out=doc_offsets[1:])
            doc_split = split_documents(len(doc_ids), fractions, seed)
            per_chunk = {"text_offsets": (np.int64, n + 1, self._text_offsets(text_end)),
                         "chunk_pos": (np.int32, n, (p for _, p in _doc_blocks(doc_offsets))),
                         "chunk_doc": (np.int64, n, (d for d, _ in _doc_blocks(doc_offsets)))}
            files = {f"{name}.npy": atomic_write_bytes(self.root / f"{name}.npy", _npy_blocks(dtype, rows, blocks))
                     for name, (dtype, rows, blocks) in per_chunk.items()}
            for name, arr in (("doc_offsets", doc_offsets), ("doc_split", doc_split)):
                files[f"{name}.npy"] = atomic_write_bytes(self.root / f"{name}.npy", _npy_bytes(arr))
            files["doc_ids.json"] = atomic_write_json(self.root / "doc_ids.json", doc_ids)
            mean, std = self._train_stats(n, doc_offsets, doc_split)
            files["stats.npz"] = atomic_write_bytes(self.root / "stats.npz", _npz_bytes(mean=mean.astype(np.float32), std=std.astype(np.float32)))
            header = _npy_header(self.dtype, n, self.dim)
            self._place(VECTORS_PART, "vectors.npy", HEADER_BYTES + n * self.row_bytes, header)
            self._place(TEXTS_PART, "texts.bin", text_end)
            files.update(self._appended_records(header))
            fsync_path(self.root)
            self.manifest.update(complete=True, chunks=n, documents=len(doc_ids), files=files,
                                 split={"fractions": list(fractions), "seed": seed})
            self._save_manifest()
        except OSError as e:
            _cleanup_tmp(self.root)
            raise NextvecError(f"could not finalize {self.root}: {e.strerror}; its shards are intact, "
                               f"rerun the same ingest to finish") from e
        shutil.rmtree(self.root / SHARDS, ignore_errors=True)

    def _appended_records(self, header: bytes) -> dict:
        """Records of vectors.npy and texts.bin, made of the hashes each shard's bytes had when appended (a
        store whose shards carry none gets no records: its files then go unchecked)."""
        shards = self.manifest["shards"]
        if not shards or any("vectors_xxh3" not in s for s in shards):
            return {}
        vectors, texts = [[0, HEADER_BYTES, digest(header)]], []
        for s, v, t in self._shard_spans():
            vectors.append([*v, s["vectors_xxh3"]])
            texts.append([*t, s["texts_xxh3"]])
        rows, text = self._ends()
        return {"vectors.npy": {"bytes": HEADER_BYTES + rows * self.row_bytes, "parts": vectors},
                "texts.bin": {"bytes": text, "parts": texts}}

    def _part(self, part: str, final: str) -> Path:
        """An appended file: still in shards/, or already renamed into place by an interrupted finalize."""
        path = self.root / SHARDS / part
        return path if path.exists() else self.root / final

    def _listings(self):
        """Each shard's listing: {"ids", "chunks" (per document), "bytes" (per chunk)}, one at a time."""
        for s in self.manifest["shards"]:
            yield json.loads((self.root / SHARDS / f"{s['name']}.json").read_bytes())

    def _documents(self) -> tuple[list[str], np.ndarray]:
        """Document ids and chunks per document, from the shard listings."""
        doc_ids: list[str] = []
        lengths: list[np.ndarray] = []
        for listing in self._listings():
            doc_ids += listing["ids"]
            lengths.append(np.asarray(listing["chunks"], dtype=np.int64))
        return doc_ids, np.concatenate(lengths)

    def _text_offsets(self, text_end: int):
        """The (N + 1,) byte offsets of the texts in texts.bin, a shard at a time; refuses listings whose
        bytes do not add up to what the manifest says was appended."""
        end = 0
        yield np.zeros(1, np.int64)
        for listing in self._listings():
            offsets = end + np.cumsum(np.asarray(listing["bytes"], dtype=np.int64))
            end = int(offsets[-1]) if len(offsets) else end
            yield offsets
        if end != text_end:
            raise NextvecError(f"the shard listings of {self.root} disagree with its manifest; re-ingest")

    def _train_stats(self, n: int, doc_offsets: np.ndarray, doc_split: np.ndarray,
                     block: int = 16384) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and std of the train rows, read back in blocks (float32 sums of 4096 rows,
        accumulated in float64); a row is train when its document is."""
        total = np.zeros(self.dim, np.float64)
        total_sq = np.zeros(self.dim, np.float64)
        with open(self._part(VECTORS_PART, "vectors.npy"), "rb") as f:  # reads, not a memmap: RSS holds one block
            f.seek(HEADER_BYTES)
            for a in range(0, n, block):
                m = min(block, n - a)
                rows = np.fromfile(f, self.dtype, m * self.dim)
                is_train = doc_split[np.searchsorted(doc_offsets, np.arange(a, a + m), "right") - 1] == 0
                tr = rows.reshape(m, self.dim)[is_train].astype(np.float32)
                for b in range(0, len(tr), 4096):
                    total += tr[b : b + 4096].sum(0)
                    total_sq += np.einsum("nd,nd->d", tr[b : b + 4096], tr[b : b + 4096])
        n_train = max(int(np.diff(doc_offsets)[doc_split == 0].sum()), 1)
        mean = total / n_train
        return mean, np.sqrt(np.maximum(total_sq / n_train - mean * mean, 0.0))

    def _place(self, part: str, final: str, size: int, header: bytes = b"") -> None:
        _finish_file(self._part(part, final), size, header, self.root / final)


HEADER_BYTES = 128  # room reserved at the start of vectors.bin for the npy header, written by finalize
VECTORS_PART, TEXTS_PART = "vectors.bin", "texts.bin"


def _npy_header(dtype: str, n: int, dim: int) -> bytes:
    """An npy (format 1.0) header of exactly HEADER_BYTES bytes for a C-ordered (n, dim) array."""
    d = repr({"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (n, dim)})
    body = d.encode("latin1")
    pad = HEADER_BYTES - 10 - len(body) - 1
    if pad < 0:
        raise NextvecError(f"a store of shape ({n}, {dim}) does not fit the reserved npy header")
    return b"\x93NUMPY\x01\x00" + (HEADER_BYTES - 10).to_bytes(2, "little") + body + b" " * pad + b"\n"


def _finish_file(path: Path, size: int, header: bytes, final: Path) -> None:
    """Cut an appended file to the `size` bytes the manifest lists, write its header, fsync, rename to `final`."""
    with open(path, "r+b") as f:
        f.truncate(size)
        if header:
            f.seek(0)
            f.write(header)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path, final)


def _write_at(path: Path, offset: int, data) -> None:
    """Write `data` at `offset` of `path` (created if missing), drop anything after it, fsync."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _doc_blocks(doc_offsets: np.ndarray, rows: int = 1 << 20):
    """(chunk_doc, chunk_pos) of whole documents holding about `rows` chunks at a time, in store order."""
    a, n_docs = 0, len(doc_offsets) - 1
    while a < n_docs:
        b = max(a + 1, int(np.searchsorted(doc_offsets, doc_offsets[a] + rows, "right")) - 1)
        lengths = np.diff(doc_offsets[a : b + 1])
        docs = np.repeat(np.arange(a, b, dtype=np.int64), lengths)
        yield docs, (np.arange(len(docs), dtype=np.int64) - (doc_offsets[docs] - doc_offsets[a])).astype(np.int32)
        a = b


def _npy_blocks(dtype, rows: int, blocks):
    """An npy file of `rows` items of `dtype` made block by block: the header, then each block's bytes."""
    import io

    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                "fortran_order": False, "shape": (rows,)})
    yield head.getvalue()
    written = 0
    for block in blocks:
        block = np.ascontiguousarray(block, dtype=dtype)
        written += len(block)
        yield block.view(np.uint8).reshape(-1)
    if written != rows:
        raise NextvecError(f"made {written} rows of an array of {rows}; the store's shard listings disagree")


def _npy_bytes(arr: np.ndarray) -> list:
    """An array as npy: its header, then its own buffer (no copy of a 20M-row array)."""
    import io

    arr = np.ascontiguousarray(arr)
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, np.lib.format.header_data_from_array_1_0(arr))
    return [head.getvalue(), arr.view(np.uint8).reshape(-1)]


def _npz_bytes(**arrays) -> bytes:
    import io

    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


def _cleanup_tmp(folder: Path) -> None:
    for p in Path(folder).glob("*.tmp"):
        try:
            p.unlink()
        except OSError:
            pass
