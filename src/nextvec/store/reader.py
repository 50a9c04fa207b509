"""Read-only view of a finished concept store; vectors are memory-mapped, never loaded whole."""

from __future__ import annotations

import json
import os
import weakref
from functools import cached_property
from pathlib import Path

import numpy as np

from nextvec.errors import NextvecError
from nextvec.integrity import IntegrityError, check_file
from nextvec.store.format import FORMAT_VERSION, read_manifest

SPLITS = ("train", "val", "test")


class ConceptStore:
    """A finished store. Chunks of one document are contiguous and ordered by position.

    Attributes:
        vectors: (N, D) memmap (float32 or float16); use `get` for float32 copies.
        chunk_doc: (N,) document index of each chunk.   chunk_pos: (N,) position in the document.
        doc_offsets: (n_docs + 1,) chunk ranges.         doc_split: (n_docs,) 0 train / 1 val / 2 test.
        mean, std: (D,) float32 statistics of the train vectors (std is 0 on constant dimensions).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = read_manifest(self.root) if self.root.is_dir() else None
        if manifest is None:
            raise NextvecError(f"{self.root} is not a concept store (no manifest.json); create one with `nextvec ingest`")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise NextvecError(f"{self.root} has store format {manifest.get('format_version')}, expected {FORMAT_VERSION}")
        if not manifest.get("complete"):
            raise NextvecError(
                f"{self.root} is incomplete ({sum(s['chunks'] for s in manifest['shards'])} chunks in "
                f"{len(manifest['shards'])} shards): its ingest was interrupted; rerun the same ingest command to resume"
            )
        self.hashed = "files" in manifest  # False when the manifest lists no file records: nothing to check
        if self.hashed:
            bad = {name: why for name, why in file_problems(self.root, manifest, full=False).items() if why}
            if bad:
                name, why = next(iter(bad.items()))
                raise IntegrityError(f"{self.root / name} is damaged ({why}); check every file with "
                                     f"`nextvec verify {self.root}`")
        try:
            self._load(manifest)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as e:  # damaged by hand or by another tool
            raise NextvecError(f"{self.root} is damaged ({type(e).__name__}: {e}); re-ingest it into a new folder") from e

    def _load(self, manifest: dict) -> None:
        self.manifest = manifest
        # the sentence splitter that made the chunks ({"name", "version"}; None when the manifest names none);
        # part of the fingerprint so that checks refuse mixing chunks split differently
        self.splitter: dict | None = manifest.get("params", {}).get("splitter")
        self.fingerprint: dict = {**manifest["encoder"], **({"splitter": self.splitter} if self.splitter else {})}
        self.dim: int = int(manifest["dim"])
        self.vectors = np.load(self.root / "vectors.npy", mmap_mode="r", allow_pickle=False)
        # per-chunk arrays are memory-mapped too: a 20M-chunk store costs no RAM until they are read (code
        # that looks chunks up at random places uses doc_of / pos_of, computed from doc_offsets in RAM)
        self.chunk_doc = np.load(self.root / "chunk_doc.npy", mmap_mode="r", allow_pickle=False)
        self.chunk_pos = np.load(self.root / "chunk_pos.npy", mmap_mode="r", allow_pickle=False)
        self.doc_offsets = np.load(self.root / "doc_offsets.npy", allow_pickle=False)
        self.doc_split = np.load(self.root / "doc_split.npy", allow_pickle=False)
        self._text_offsets = np.load(self.root / "text_offsets.npy", mmap_mode="r", allow_pickle=False)
        with np.load(self.root / "stats.npz", allow_pickle=False) as st:
            self.mean = st["mean"].astype(np.float32)
            self.std = st["std"].astype(np.float32)
        if self.vectors.shape != (len(self.chunk_doc), self.dim):
            raise NextvecError(f"{self.root} is damaged: vectors {self.vectors.shape} vs {len(self.chunk_doc)} chunks")

    def __len__(self) -> int:
        return len(self.chunk_doc)

    @property
    def n_docs(self) -> int:
        return len(self.doc_split)

    @cached_property
    def doc_ids(self) -> list[str]:
        return json.loads((self.root / "doc_ids.json").read_text())

    @cached_property
    def _texts(self) -> bytes:
        return (self.root / "texts.bin").read_bytes()

    def text(self, i: int) -> str:
        a, b = self._text_offsets[i], self._text_offsets[i + 1]
        return self._texts[a:b].decode("utf-8")

    def texts(self, idx) -> list[str]:
        return [self.text(int(i)) for i in np.asarray(idx).reshape(-1)]

    def get(self, idx) -> np.ndarray:
        """Float32 copy of the vectors at `idx` (int, slice or index array)."""
        return np.asarray(self.vectors[idx], dtype=np.float32)

    def read_rows(self, a: int, b: int, out: np.ndarray | None = None) -> np.ndarray:
        """Vectors [a, b) in the store's dtype, read with pread rather than through the memory map: the
        file's pages then sit in the page cache without counting in this process's RSS (a memory-mapped
        read also maps the kernel's read-ahead, so scattered reads would map most of a large store)."""
        if out is not None and out.dtype != self.vectors.dtype:  # e.g. a float32 table from a float16 store
            out[...] = self.read_rows(a, b)
            return out
        out = np.empty((b - a, self.dim), self.vectors.dtype) if out is None else out
        if out.shape != (b - a, self.dim) or not out.flags.c_contiguous:
            raise ValueError(f"read_rows needs a C-contiguous ({b - a}, {self.dim}) buffer")
        if b > a:
            row = self.dim * self.vectors.dtype.itemsize
            view = memoryview(out).cast("B")
            done = 0
            while done < len(view):  # pread may return short counts
                n = os.preadv(self._vectors_fd, [view[done:]], self.vectors.offset + a * row + done)
                if n <= 0:
                    raise NextvecError(f"{self.root}/vectors.npy ended early: rows {a}..{b} are not all there")
                done += n
        return out

    @cached_property
    def _vectors_fd(self) -> int:
        fd = os.open(self.root / "vectors.npy", os.O_RDONLY)
        self._fd_closer = weakref.finalize(self, os.close, fd)
        return fd

    def split_code(self, split: str) -> int:
        if split not in SPLITS:
            raise NextvecError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return SPLITS.index(split)

    def doc_of(self, ids) -> np.ndarray:
        """Document index of chunks `ids`, from doc_offsets (in RAM). Random lookups in the memory-mapped
        chunk_doc would map ~64 KB of it per lookup into RSS (page-cache fault-around): 0.2 GB for 2,000
        validation windows of a 20M-chunk store."""
        return np.searchsorted(self.doc_offsets, np.asarray(ids, dtype=np.int64), side="right") - 1

    def pos_of(self, ids) -> np.ndarray:
        """Position of chunks `ids` inside their documents (int64), from doc_offsets."""
        ids = np.asarray(ids, dtype=np.int64)
        return ids - self.doc_offsets[self.doc_of(ids)]

    def split_docs(self, split: str) -> np.ndarray:
        """Document indices of a split."""
        return np.flatnonzero(self.doc_split == self.split_code(split))

    def split_chunks(self, split: str) -> np.ndarray:
        """Chunk indices of a split, in store order (documents contiguous); built from document ranges, so
        it never scans the per-chunk arrays."""
        docs = self.split_docs(split)
        return concat_ranges(self.doc_offsets[docs], np.diff(self.doc_offsets)[docs])

    def doc_range(self, d: int) -> tuple[int, int]:
        return int(self.doc_offsets[d]), int(self.doc_offsets[d + 1])

    def summary(self) -> dict:
        """Counts per split, dimension, encoder and chunk-length statistics (what `nextvec info` prints)."""
        counts = self._length_counts()
        splits = {}
        for s in SPLITS:
            docs = self.split_docs(s)
            splits[s] = {"documents": int(len(docs)), "chunks": int(np.diff(self.doc_offsets)[docs].sum())}
        return {
            "path": str(self.root),
            "documents": self.n_docs,
            "chunks": len(self),
            "dim": self.dim,
            "dtype": str(self.vectors.dtype),
            "encoder": self.manifest["encoder"],
            "splitter": self.splitter,
            "splits": splits,
            "split_seed": self.manifest.get("split", {}).get("seed"),
            "chunk_chars": {
                "mean": float((np.arange(len(counts)) * counts).sum() / counts.sum()),
                "p50": percentile_of_counts(counts, 50),
                "p95": percentile_of_counts(counts, 95),
                "max": int(np.flatnonzero(counts)[-1]),
            },
            "chunks_per_doc": {
                "mean": float(np.diff(self.doc_offsets).mean()),
                "min": int(np.diff(self.doc_offsets).min()),
                "max": int(np.diff(self.doc_offsets).max()),
            },
            "params": self.manifest.get("params", {}),
            "letterless_merged": self.letterless_merged,
        }

    def _length_counts(self, block: int = 1 << 20) -> np.ndarray:
        """Chunks per length: in characters up to 200k chunks, else in bytes (equal for ASCII text), read in
        blocks of offsets with plain reads (a bounded amount of memory, nothing left mapped)."""
        if len(self) <= 200_000:
            return np.bincount([len(self.text(i)) for i in range(len(self))])
        counts = np.zeros(1, np.int64)
        with open(self.root / "text_offsets.npy", "rb") as f:
            for a in range(0, len(self), block):
                f.seek(self._text_offsets.offset + a * 8)
                m = min(block, len(self) - a) + 1
                c = np.bincount(np.diff(np.frombuffer(f.read(m * 8), np.int64)))
                counts = np.pad(counts, (0, max(0, len(c) - len(counts))))
                counts[: len(c)] += c
        return counts

    @property
    def letterless_merged(self) -> int | None:
        """Chunk-hygiene merges made at ingest (None for a store made before they were counted)."""
        shards = self.manifest.get("shards", [])
        if not shards or any("letterless_merged" not in s for s in shards):
            return None
        return sum(int(s["letterless_merged"]) for s in shards)


def file_problems(root: Path, manifest: dict, full: bool = True) -> dict[str, str | None]:
    """Each file a hashed store's manifest lists -> what is wrong with it (None: nothing). Sizes always;
    contents of every file when `full`, else of the small ones (nextvec.integrity.SMALL_BYTES)."""
    return {name: check_file(Path(root) / name, rec, full) for name, rec in sorted(manifest.get("files", {}).items())}


def percentile_of_counts(counts: np.ndarray, q: float) -> float:
    """np.percentile(values, q) (linear interpolation, its rounding) of the values whose counts are
    `counts` (counts[v] = how many values equal v)."""
    ends = np.cumsum(counts)
    pos = (q / 100) * (int(ends[-1]) - 1)
    a, b = (float(np.searchsorted(ends, k, "right")) for k in (np.floor(pos), np.ceil(pos)))
    t = pos - np.floor(pos)
    return float(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)


def concat_ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """[starts[0], starts[0] + lengths[0]) ++ [starts[1], ...) as one int64 array, without a Python loop."""
    lengths = np.maximum(np.asarray(lengths, dtype=np.int64), 0)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    shift = np.repeat(np.asarray(starts, dtype=np.int64) - (ends - lengths), lengths)  # (total,)
    return np.arange(total, dtype=np.int64) + shift


def open_store(path: str | Path) -> ConceptStore:
    return ConceptStore(path)
