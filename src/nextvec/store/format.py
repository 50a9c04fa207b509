"""File names and atomic-write helpers shared by the store writer and reader.

A store is one folder:

    manifest.json        written last, replaced atomically; `complete` says the store is usable
    shards/              ingest progress: vectors.bin and texts.bin (appended; renamed into place by
                         finalize) and shard-NNNNN.json (document ids, chunks per document, text bytes)
    vectors.npy          (N, D) float32 or float16, memory-mapped by the reader
    chunk_doc.npy        (N,) int64, document index of each chunk
    chunk_pos.npy        (N,) int32, position of the chunk inside its document
    texts.bin            UTF-8 chunk texts, concatenated
    text_offsets.npy     (N + 1,) int64 byte offsets into texts.bin
    doc_offsets.npy      (n_docs + 1,) int64: document d owns chunks [doc_offsets[d], doc_offsets[d+1])
    doc_split.npy        (n_docs,) int8: 0 train, 1 val, 2 test
    doc_ids.json         original document ids, in document-index order
    stats.npz            per-dimension mean and std of the TRAIN vectors (float64 accumulation)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import xxhash

from nextvec.integrity import HASH, seal_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHARDS = "shards"


def fsync_path(path: Path) -> None:
    """fsync a file or a folder (a folder's fsync makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data) -> dict:
    """Write to a temporary sibling, fsync, then rename over `path`: readers see old or new, never half.
    `data` is bytes, or buffers (a list, or an iterator that makes them block by block) written one after
    the other. Returns the file's integrity record: its size and the hash of the bytes as they went out."""
    parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else data
    tmp = path.with_name(path.name + ".tmp")
    h, size = xxhash.xxh3_128(), 0
    try:
        with open(tmp, "wb") as f:
            for part in parts:
                f.write(part)
                h.update(part)
                size += memoryview(part).nbytes
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_path(path.parent)
    return {"bytes": size, HASH: h.hexdigest()}


def atomic_write_json(path: Path, obj) -> dict:
    """A JSON file whose hash the caller records (a list, or a file listed in a manifest)."""
    return atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def write_sealed_json(path: Path, obj: dict, indent: int | None = 1) -> None:
    """A JSON object that carries its own hash (nextvec.integrity.seal_json), written atomically."""
    atomic_write_bytes(Path(path), seal_json(obj, indent) + b"\n")


def read_manifest(root: Path) -> dict | None:
    """The manifest of a store folder (None when there is none), its seal checked: a manifest written by a
    nextvec that seals must carry a matching one (one damaged byte cannot both remove the seal and make the
    manifest look older: an older one has no file records and no shard hashes)."""
    from nextvec.errors import NextvecError
    from nextvec.integrity import IntegrityError, sealed_file

    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
        sealed = sealed_file(data)
        manifest = json.loads(data)
    except (OSError, ValueError) as e:  # ValueError covers bad JSON and bad UTF-8
        raise IntegrityError(f"{path} is damaged or unreadable ({e}); it was not written by nextvec's atomic "
                             f"writer, re-ingest into a new folder") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards", []), list):
        raise NextvecError(f"{path} is not a nextvec store manifest; re-ingest into a new folder")
    if sealed is False or (sealed is None and is_hashed(manifest)):
        raise IntegrityError(f"{path} is damaged: it does not match its content hash; re-ingest into a new folder")
    manifest.pop("seal", None)
    return manifest


def is_hashed(manifest: dict) -> bool:
    """Whether a manifest was written by a nextvec that records content hashes."""
    return "files" in manifest or "seal" in manifest or any("vectors_xxh3" in s for s in manifest.get("shards", []))


def record_files(root: Path, records: dict) -> None:
    """Add file records ({name: record}) to a finished, hashed store's manifest."""
    manifest = read_manifest(root)
    if manifest is None or "files" not in manifest:
        return
    manifest["files"].update(records)
    write_sealed_json(Path(root) / MANIFEST, manifest)
