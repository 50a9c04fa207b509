"""Append-only, resumable store writer.

Ingest hands over whole documents in source order, a shard at a time. Each shard is written to
temporary files, fsynced and renamed; only then is the manifest replaced to list it. A kill at any
moment leaves a manifest that lists complete shards only, so rerunning the same ingest skips the
source records already consumed and continues: no chunk is duplicated or lost. `finalize` packs the
shards into the memory-mapped arrays, draws the document-level split and the train statistics, and
flips `complete` in the manifest last.
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
)

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
            (self.root / SHARDS).mkdir(parents=True, exist_ok=True)
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
        self.manifest = manifest
        self.dim = int(manifest["dim"])

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
        atomic_write_json(self.root / MANIFEST, self.manifest)

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
        shard_dir = self.root / SHARDS
        lines = "".join(json.dumps({"id": doc_id, "chunks": chunks}, ensure_ascii=False) + "\n" for doc_id, chunks in docs)
        buf = _npy_bytes(vectors.astype(self.dtype))
        try:
            atomic_write_bytes(shard_dir / f"{name}.npy", buf)
            atomic_write_bytes(shard_dir / f"{name}.jsonl", lines.encode("utf-8"))
        except OSError as e:
            _cleanup_tmp(shard_dir)
            raise NextvecError(f"could not write {name} in {self.root}: {e.strerror}; the store still holds "
                               f"{self.chunks_written} chunks and resumes from there") from e
        self.manifest["shards"].append({"name": name, "docs": len(docs), "chunks": n, "source_end": int(source_end),
                                        "letterless_merged": int(letterless_merged)})
        try:
            self._save_manifest()
        except OSError as e:
            self.manifest["shards"].pop()
            _cleanup_tmp(self.root)
            raise NextvecError(f"could not update the manifest of {self.root}: {e.strerror}") from e

    def finalize(self, fractions: tuple[float, float, float], seed: int) -> None:
        """Pack shards into the final arrays, split documents, compute train statistics, mark complete.

        Streams shard by shard, so memory holds per-chunk offsets, never all texts or vectors at once."""
        if self.complete:
            return
        try:
            doc_ids, doc_lengths, text_offsets = self._pack_texts()
            n = len(text_offsets) - 1
            if n == 0:
                raise NextvecError("no chunks were ingested: every document was empty or skipped")
            atomic_write_bytes(self.root / "text_offsets.npy", _npy_bytes(text_offsets))
            del text_offsets  # arrays are written one by one and dropped: a 20M-chunk store stays under 1 GB
            doc_offsets = np.zeros(len(doc_ids) + 1, dtype=np.int64)
            np.cumsum(doc_lengths, out=doc_offsets[1:])
            chunk_doc = np.repeat(np.arange(len(doc_ids), dtype=np.int64), doc_lengths)
            chunk_pos = np.arange(n, dtype=np.int64)
            chunk_pos -= doc_offsets[:-1].repeat(doc_lengths)
            doc_split = split_documents(len(doc_ids), fractions, seed)
            for name, arr in (("chunk_pos", chunk_pos.astype(np.int32)), ("doc_offsets", doc_offsets),
                              ("doc_split", doc_split)):
                atomic_write_bytes(self.root / f"{name}.npy", _npy_bytes(arr))
            del chunk_pos
            mean, std = self._pack_vectors(n, doc_split[chunk_doc] == 0)
            atomic_write_bytes(self.root / "chunk_doc.npy", _npy_bytes(chunk_doc))
            atomic_write_json(self.root / "doc_ids.json", doc_ids)
            stats = _npz_bytes(mean=mean.astype(np.float32), std=std.astype(np.float32))
            atomic_write_bytes(self.root / "stats.npz", stats)
            fsync_path(self.root)
            self.manifest.update(
                complete=True,
                chunks=n,
                documents=len(doc_ids),
                split={"fractions": list(fractions), "seed": seed},
            )
            self._save_manifest()
        except OSError as e:
            _cleanup_tmp(self.root)
            raise NextvecError(f"could not finalize {self.root}: {e.strerror}; its shards are intact, "
                               f"rerun the same ingest to finish") from e
        shutil.rmtree(self.root / SHARDS, ignore_errors=True)

    def _pack_texts(self) -> tuple[list[str], list[int], np.ndarray]:
        """Concatenate the shards' chunk texts into texts.bin; returns doc ids, doc lengths, (N + 1,) offsets."""
        doc_ids: list[str] = []
        doc_lengths: list[int] = []
        byte_lengths: list[np.ndarray] = []
        tmp = self.root / "texts.bin.tmp"
        with open(tmp, "wb") as out:
            for s in self.manifest["shards"]:
                shard_lengths: list[int] = []
                with open(self.root / SHARDS / f"{s['name']}.jsonl", encoding="utf-8") as f:
                    for line in f:
                        rec = json.loads(line)
                        doc_ids.append(rec["id"])
                        doc_lengths.append(len(rec["chunks"]))
                        encoded = [t.encode("utf-8") for t in rec["chunks"]]
                        out.write(b"".join(encoded))
                        shard_lengths.extend(map(len, encoded))
                byte_lengths.append(np.asarray(shard_lengths, dtype=np.int64))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.root / "texts.bin")
        lengths = np.concatenate(byte_lengths) if byte_lengths else np.zeros(0, np.int64)
        text_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=text_offsets[1:])
        return doc_ids, doc_lengths, text_offsets

    def _pack_vectors(self, n: int, is_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copy shard vectors into vectors.npy; returns the per-dimension mean and std of the train rows."""
        tmp_vec = self.root / "vectors.npy.tmp"
        total = np.zeros(self.dim, np.float64)
        total_sq = np.zeros(self.dim, np.float64)
        row = 0
        # Plain writes, not a memmap: on a full disk a write raises ENOSPC, a memmap store dies of SIGBUS.
        with open(tmp_vec, "wb") as f:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(self.dtype)), "fortran_order": False,
                      "shape": (n, self.dim)}
            np.lib.format.write_array_header_1_0(f, header)
            for s in self.manifest["shards"]:
                v = np.load(self.root / SHARDS / f"{s['name']}.npy", allow_pickle=False)
                f.write(np.ascontiguousarray(v, dtype=self.dtype).tobytes())
                tr = v[is_train[row : row + len(v)]].astype(np.float32, copy=False)
                total += tr.sum(0, dtype=np.float64)
                total_sq += np.square(tr).sum(0, dtype=np.float64)
                row += len(v)
            f.flush()
            os.fsync(f.fileno())
        n_train = int(is_train.sum())
        mean = total / max(n_train, 1)
        std = np.sqrt(np.maximum(total_sq / max(n_train, 1) - mean * mean, 0.0))
        os.replace(tmp_vec, self.root / "vectors.npy")
        return mean, std


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    b = io.BytesIO()
    np.save(b, arr, allow_pickle=False)
    return b.getvalue()


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
