"""A store's data card: what to check before training on a corpus you did not write.

Written by ingest beside the arrays as `card.json` (numbers) and `card.md` (the same, to read);
`nextvec info STORE` prints it (and builds it on the fly for a store made before cards existed).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nextvec.store.format import atomic_write_bytes, atomic_write_json, record_files
from nextvec.store.reader import SPLITS, ConceptStore, percentile_of_counts

CARD_JSON, CARD_MD = "card.json", "card.md"
LENGTH_EDGES = (0, 10, 20, 40, 80, 160, 320, 640)  # chunk length bins in characters: [a, b), the last open
SHORT_CHARS = 20  # "very short": fewer characters than this (a title, "Yes.", a stray fragment)
TOP = 10
BLOCK_CHUNKS, BLOCK_BYTES = 16_384, 1 << 22  # the card reads texts.bin in blocks of at most these (~15 MB at a time)


def _length_histogram(counts: np.ndarray) -> list[dict]:
    edges = list(LENGTH_EDGES) + [None]
    return [{"from": a, "to": b, "chunks": int(counts[a:b].sum())} for a, b in zip(edges[:-1], edges[1:])]


def build_card(store: ConceptStore, top: int = TOP, block_chunks: int = BLOCK_CHUNKS,
               block_bytes: int = BLOCK_BYTES) -> dict:
    """Counts per split, chunk lengths, splitter, encoder, hygiene and exact duplicates of a store.

    One streaming pass over texts.bin, a block of at most `block_chunks` chunks and `block_bytes` bytes at a
    time, counts chunks per length and writes each chunk's (text hash, index) to one of BUCKETS temporary
    files by its hash; duplicates are then counted a bucket at a time. Memory holds one block and one
    bucket (16 bytes for 1 / BUCKETS of the chunks), whatever the store's size. The card is the one that
    reading every text into a list would give: tests/store/test_card.py checks them equal."""
    import tempfile

    with _TextFile(store) as tf, tempfile.TemporaryDirectory(prefix="nextvec-card-") as spill:
        length_counts, letterless = _scan(tf, block_chunks, block_bytes, Path(spill))
        chunk_chars, very_short = _length_stats(length_counts)
        duplicates = _duplicates(Path(spill), len(store), top, tf.text)
    per_doc = np.diff(store.doc_offsets)
    return {
        "store": str(store.root),
        "documents": store.n_docs,
        "chunks": len(store),
        "splits": {s: {"documents": int(len(store.split_docs(s))), "chunks": int(per_doc[store.split_docs(s)].sum())}
                   for s in SPLITS},
        "encoder": store.manifest["encoder"],
        "splitter": store.splitter,
        "max_chars": store.manifest.get("params", {}).get("max_chars"),
        "chunk_chars": chunk_chars,
        "very_short": very_short,
        "hygiene": {"letterless_merged": store.letterless_merged, "letterless_chunks": letterless},
        "duplicates": duplicates,
    }


def _length_stats(counts: np.ndarray) -> tuple[dict, dict]:
    """The card's `chunk_chars` and `very_short` from the number of chunks of each length in characters
    (the median as np.percentile's linear interpolation gives it)."""
    n = int(counts.sum())
    short = int(counts[:SHORT_CHARS].sum())
    return ({"mean": round(float((np.arange(len(counts)) * counts).sum() / n), 1), "p50": percentile_of_counts(counts, 50),
             "max": int(np.flatnonzero(counts)[-1]), "histogram": _length_histogram(counts)},
            {"below_chars": SHORT_CHARS, "chunks": short, "share": round(short / n, 5)})


class _TextFile:
    """A store's chunk texts read with plain file reads, never whole and never through a memory map (mapped
    pages count in the process's RSS until unmapped): a scan of a 20M-chunk store holds one block."""

    def __init__(self, store: ConceptStore):
        offsets = np.load(store.root / "text_offsets.npy", mmap_mode="r")  # for its header only: nothing is read
        self.n, self._head, self._dtype = len(offsets) - 1, offsets.offset, offsets.dtype
        self._offsets = open(store.root / "text_offsets.npy", "rb")
        self._texts = open(store.root / "texts.bin", "rb")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._offsets.close()
        self._texts.close()

    def offsets(self, a: int, b: int) -> np.ndarray:
        """Byte offsets of chunks a..b inclusive (b - a + 1 of them) in texts.bin."""
        self._offsets.seek(self._head + a * self._dtype.itemsize)
        return np.frombuffer(self._offsets.read((b - a + 1) * self._dtype.itemsize), self._dtype).astype(np.int64)

    def read(self, lo: int, hi: int) -> bytes:
        self._texts.seek(lo)
        return self._texts.read(hi - lo)

    def text(self, i: int) -> str:
        lo, hi = self.offsets(i, i + 1).tolist()
        return self.read(lo, hi).decode("utf-8")

    def blocks(self, block_chunks: int, block_bytes: int):
        """(first chunk, offsets relative to the block, the block's bytes), in store order; a block holds at
        least one chunk, so a chunk longer than `block_bytes` is a block of its own."""
        a = 0
        while a < self.n:
            offs = self.offsets(a, min(a + block_chunks, self.n))
            m = max(1, int(np.searchsorted(offs, offs[0] + block_bytes, "right")) - 1)
            offs = offs[: m + 1]
            yield a, offs - offs[0], self.read(int(offs[0]), int(offs[-1]))
            a += m


BUCKETS = 64  # duplicate counting spills (hash, chunk index) pairs into this many files, by hash


def _scan(tf: _TextFile, block_chunks: int, block_bytes: int, spill: Path) -> tuple[np.ndarray, int]:
    """Chunks per length in characters, and how many chunks hold no letter or digit, in one pass over the
    texts; each chunk's (hash of its text, index) goes to spill/bucket-B.bin, B its hash's bucket."""
    counts, letterless = np.zeros(1, np.int64), 0
    files = [open(spill / f"bucket-{b}.bin", "wb") for b in range(BUCKETS)]
    try:
        for a, offs, buf in tf.blocks(block_chunks, block_bytes):
            lengths, n_letterless = _block_stats(offs, buf)
            letterless += n_letterless
            block = np.bincount(lengths)
            counts = np.pad(counts, (0, max(0, len(block) - len(counts))))
            counts[: len(block)] += block
            bounds = offs.tolist()
            # Python's hash of the bytes (64-bit SipHash, 3x faster here than blake2b): equal texts hash equal;
            # two different ones share a hash with odds of about N^2 / 2^65 (1e-5 for 20M chunks)
            hashes = np.array([hash(buf[x:y]) for x, y in zip(bounds[:-1], bounds[1:])], np.int64)
            pairs = np.stack([hashes, np.arange(a, a + len(hashes), dtype=np.int64)], 1)
            bucket = hashes % BUCKETS
            for b in np.unique(bucket).tolist():
                files[b].write(pairs[bucket == b].tobytes())
    finally:
        for f in files:
            f.close()
    return counts, letterless


def _block_stats(offs: np.ndarray, buf: bytes) -> tuple[np.ndarray, int]:
    """Characters per chunk of one block (UTF-8 bytes less continuation bytes) and how many of its chunks
    have no character for which str.isalnum() holds: decided from the bytes for ASCII chunks and for chunks
    holding an ASCII letter or digit, by decoding the rest."""
    u8 = np.frombuffer(buf, np.uint8)
    n_bytes = np.diff(offs)
    continuation = np.diff(np.searchsorted(np.flatnonzero((u8 & 0xC0) == 0x80), offs))  # 10xxxxxx bytes
    ascii_alnum = _any_per_chunk(_ascii_alnum_bytes(u8), offs)
    unsure = np.flatnonzero(~ascii_alnum & (continuation > 0)).tolist()
    letterless = int((~ascii_alnum & (continuation == 0)).sum())
    letterless += sum(not any(c.isalnum() for c in buf[offs[i]:offs[i + 1]].decode("utf-8")) for i in unsure)
    return n_bytes - continuation, letterless


def _ascii_alnum_bytes(u8: np.ndarray) -> np.ndarray:
    """Which bytes are [0-9A-Za-z] (the ASCII characters for which str.isalnum() holds), in place where it can:
    uint8 differences wrap around, so `x - ord("a") < 26` is one test of a range."""
    letter = u8 | 0x20  # upper to lower case
    letter -= ord("a")
    alnum = letter < 26
    np.subtract(u8, ord("0"), out=letter)
    alnum |= letter < 10
    return alnum


def _any_per_chunk(flags: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """Whether any of each chunk's bytes is flagged (False for an empty chunk, which reduceat cannot express)."""
    full = offs[1:] > offs[:-1]
    out = np.zeros(len(full), bool)
    if full.any():  # chunks with bytes, end to end: each one's bytes run to the next one's start
        out[full] = np.logical_or.reduceat(flags, offs[:-1][full])
    return out


def _duplicates(spill: Path, n: int, top: int, text_of) -> dict:
    """Exact duplicates, a bucket of (hash, chunk index) pairs at a time, counted as collections.Counter
    would count the texts; `most_frequent` in Counter.most_common's order: by count, ties in order of first
    occurrence (each bucket's best `top`, then the best of those: the same texts as one global sort)."""
    distinct, repeated, best = 0, 0, np.zeros((0, 2), np.int64)  # best: (count, first index) rows
    for b in range(BUCKETS):
        pairs = np.fromfile(spill / f"bucket-{b}.bin", np.int64).reshape(-1, 2)
        if not len(pairs):
            continue
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]  # by hash, then index
        new = np.ones(len(pairs), bool)
        np.not_equal(pairs[1:, 0], pairs[:-1, 0], out=new[1:])
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, len(pairs)))
        distinct += len(starts)
        many = counts > 1
        repeated += int(many.sum())
        found = np.stack([counts[many], pairs[starts[many], 1]], 1)  # the group's first (least) index
        found = np.concatenate([best, found])
        best = found[np.lexsort((found[:, 1], -found[:, 0]))][:top]
    return {
        "distinct_texts": distinct,
        "duplicate_chunks": n - distinct,  # chunks that repeat an earlier one exactly
        "texts_repeated": repeated,
        "most_frequent": [{"text": text_of(int(first)), "count": int(count)} for count, first in best.tolist()],
    }


def card_markdown(card: dict) -> str:
    e, sp, h, d = card["encoder"], card["splitter"], card["hygiene"], card["duplicates"]
    n = card["chunks"]
    lines = [f"# Data card: {card['store']}", "",
             f"- encoder: {e['name']} ({e['dim']}-d, pooling {e['pooling']}, normalized {e['normalized']})",
             f"- splitter: {sp['name']} ({sp['version']})" if sp else "- splitter: not recorded (made before nextvec recorded it)",
             f"- chunk cap: {card['max_chars']} characters",
             f"- documents {card['documents']}, chunks {n}", "",
             "| split | documents | chunks |", "|---|---|---|"]
    lines += [f"| {s} | {v['documents']} | {v['chunks']} |" for s, v in card["splits"].items()]
    c = card["chunk_chars"]
    lines += ["", f"Chunk length (characters): mean {c['mean']}, median {c['p50']:.0f}, max {c['max']}", "",
              "| characters | chunks | share |", "|---|---|---|"]
    lines += [f"| {b['from']}-{b['to'] - 1 if b['to'] else ''} | {b['chunks']} | {b['chunks'] / n:.2%} |"
              for b in c["histogram"]]
    vs = card["very_short"]
    merged = "not recorded" if h["letterless_merged"] is None else h["letterless_merged"]
    lines += ["", f"Very short chunks (< {vs['below_chars']} characters): {vs['chunks']} ({vs['share']:.2%})",
              f"Chunks without a letter or digit: {h['letterless_chunks']} (merged into a neighbour at ingest: {merged})",
              "", f"Exact duplicates: {d['duplicate_chunks']} chunks repeat an earlier one ({d['duplicate_chunks'] / n:.2%}); "
              f"{d['texts_repeated']} texts occur more than once"]
    if d["most_frequent"]:
        lines += ["", "| most frequent chunks | count |", "|---|---|"]
        lines += [f"| {_cell(f['text'])} | {f['count']} |" for f in d["most_frequent"]]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """A chunk as a quoted Markdown table cell (80 characters at most)."""
    return json.dumps(text[:80], ensure_ascii=False).replace("|", "\\|")


def write_card(store: ConceptStore) -> dict:
    """Build the card and write it beside the arrays; a hashed store's manifest records both files."""
    card = build_card(store)
    records = {CARD_MD: atomic_write_bytes(store.root / CARD_MD, card_markdown(card).encode("utf-8")),
               CARD_JSON: atomic_write_json(store.root / CARD_JSON, card)}
    record_files(store.root, records)
    return card


def ensure_card(store: ConceptStore) -> None:
    """Write the card of a finished store unless it has one: an ingest or import killed between finalize and
    the card gets it on the rerun (a hashed store whose manifest does not list the card yet, too)."""
    if not (store.root / CARD_JSON).exists() or (store.hashed and CARD_JSON not in store.manifest["files"]):
        write_card(store)


def load_card(store: ConceptStore) -> dict:
    """The card ingest wrote, or one built now for a store made before cards existed."""
    path = store.root / CARD_JSON
    return json.loads(path.read_text()) if path.exists() else build_card(store)
