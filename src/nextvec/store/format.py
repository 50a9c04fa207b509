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


def atomic_write_bytes(path: Path, data: bytes | list) -> None:
    """Write to a temporary sibling, fsync, then rename over `path`: readers see old or new, never half.
    `data` is bytes or a list of buffers written one after the other (a header and an array, uncopied)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for part in data if isinstance(data, list) else [data]:
            f.write(part)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:  # ValueError covers bad JSON and bad UTF-8
        from nextvec.errors import NextvecError

        raise NextvecError(f"{path} is damaged or unreadable ({e}); it was not written by nextvec's atomic writer, "
                           f"re-ingest into a new folder") from e
    if not isinstance(manifest, dict) or not isinstance(manifest.get("shards", []), list):
        from nextvec.errors import NextvecError

        raise NextvecError(f"{path} is not a nextvec store manifest; re-ingest into a new folder")
    return manifest
