"""A store's data card: what to check before training on a corpus you did not write.

Written by ingest beside the arrays as `card.json` (numbers) and `card.md` (the same, to read);
`nextvec info STORE` prints it (and builds it on the fly for a store made before cards existed).
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from nextvec.store.format import atomic_write_bytes, atomic_write_json
from nextvec.store.reader import SPLITS, ConceptStore

CARD_JSON, CARD_MD = "card.json", "card.md"
LENGTH_EDGES = (0, 10, 20, 40, 80, 160, 320, 640)  # chunk length bins in characters: [a, b), the last open
SHORT_CHARS = 20  # "very short": fewer characters than this (a title, "Yes.", a stray fragment)
TOP = 10


def _length_histogram(lengths: np.ndarray) -> list[dict]:
    edges = list(LENGTH_EDGES) + [None]
    return [{"from": a, "to": b, "chunks": int(((lengths >= a) & (lengths < (b or np.inf))).sum())}
            for a, b in zip(edges[:-1], edges[1:])]


def _duplicates(texts: list[str], top: int) -> dict:
    counts = Counter(texts)
    repeated = [(t, c) for t, c in counts.most_common() if c > 1]
    return {
        "distinct_texts": len(counts),
        "duplicate_chunks": len(texts) - len(counts),  # chunks that repeat an earlier one exactly
        "texts_repeated": len(repeated),
        "most_frequent": [{"text": t, "count": c} for t, c in repeated[:top]],
    }


def build_card(store: ConceptStore, top: int = TOP) -> dict:
    """Counts per split, chunk lengths, splitter, encoder, hygiene and exact duplicates of a store."""
    texts = [store.text(i) for i in range(len(store))]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
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
        "chunk_chars": {"mean": round(float(lengths.mean()), 1), "p50": float(np.percentile(lengths, 50)),
                        "max": int(lengths.max()), "histogram": _length_histogram(lengths)},
        "very_short": {"below_chars": SHORT_CHARS, "chunks": int((lengths < SHORT_CHARS).sum()),
                       "share": round(float((lengths < SHORT_CHARS).mean()), 5)},
        "hygiene": {"letterless_merged": store.letterless_merged,
                    "letterless_chunks": sum(not any(c.isalnum() for c in t) for t in texts)},
        "duplicates": _duplicates(texts, top),
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
    card = build_card(store)
    atomic_write_json(store.root / CARD_JSON, card)
    atomic_write_bytes(store.root / CARD_MD, card_markdown(card).encode("utf-8"))
    return card


def load_card(store: ConceptStore) -> dict:
    """The card ingest wrote, or one built now for a store made before cards existed."""
    path = store.root / CARD_JSON
    return json.loads(path.read_text()) if path.exists() else build_card(store)
