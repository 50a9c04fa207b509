"""The data card's counts on a hand-made store (every number worked out by hand)."""

import json

import numpy as np
import pytest

from nextvec.store.card import build_card, card_markdown, load_card, write_card
from storekit import build_store

LONG_A = "A sentence that is well over forty characters long."  # 51 characters
LONG_B = "Another sentence, also longer than forty characters."  # 52 characters
DOCS = [["Hello.", LONG_A, "Hello."], ["Hello.", "Yes.", LONG_B], ["Short one.", "Hello."]]


def _store(tmp_path):
    vecs = [np.eye(8, dtype=np.float32)[: len(d)] for d in DOCS]
    return build_store(tmp_path / "s", vecs, texts=DOCS, fractions=(0.34, 0.33, 0.33))


def test_card_counts(tmp_path):
    card = build_card(_store(tmp_path))
    assert (card["documents"], card["chunks"]) == (3, 8)
    assert sorted(v["chunks"] for v in card["splits"].values()) == [2, 3, 3]
    assert all(v["documents"] == 1 for v in card["splits"].values())
    hist = {b["from"]: b["chunks"] for b in card["chunk_chars"]["histogram"]}
    assert hist == {0: 5, 10: 1, 20: 0, 40: 2, 80: 0, 160: 0, 320: 0, 640: 0}  # 4 x "Hello." + "Yes."
    assert card["chunk_chars"]["max"] == 52
    assert card["very_short"] == {"below_chars": 20, "chunks": 6, "share": 0.75}
    assert card["duplicates"] == {"distinct_texts": 5, "duplicate_chunks": 3, "texts_repeated": 1,
                                  "most_frequent": [{"text": "Hello.", "count": 4}]}
    assert card["hygiene"] == {"letterless_merged": 0, "letterless_chunks": 0}
    assert card["splitter"] is None  # build_store records none: a store from before splitters were recorded


def test_card_files_and_markdown(tmp_path):
    store = _store(tmp_path)
    card = write_card(store)
    assert json.loads((store.root / "card.json").read_text()) == card == load_card(store)
    md = (store.root / "card.md").read_text()
    assert '| "Hello." | 4 |' in md and "Very short chunks (< 20 characters): 6 (75.00%)" in md
    assert "3 chunks repeat an earlier one" in md and "splitter: not recorded" in md
    assert md == card_markdown(card)


# --- the streamed card against the card of a list of all the texts (how build_card worked before streaming) ---

def counter_card(store, top=10):
    """Reference: every text in a list, lengths by len(), duplicates by collections.Counter."""
    from collections import Counter

    texts = [store.text(i) for i in range(len(store))]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    counts = Counter(texts)
    repeated = [(t, c) for t, c in counts.most_common() if c > 1]
    per_doc = np.diff(store.doc_offsets)
    edges = [0, 10, 20, 40, 80, 160, 320, 640, None]
    return {
        "store": str(store.root), "documents": store.n_docs, "chunks": len(store),
        "splits": {s: {"documents": int(len(store.split_docs(s))), "chunks": int(per_doc[store.split_docs(s)].sum())}
                   for s in ("train", "val", "test")},
        "encoder": store.manifest["encoder"], "splitter": store.splitter,
        "max_chars": store.manifest.get("params", {}).get("max_chars"),
        "chunk_chars": {"mean": round(float(lengths.mean()), 1), "p50": float(np.percentile(lengths, 50)),
                        "max": int(lengths.max()), "histogram": [
                            {"from": a, "to": b, "chunks": int(((lengths >= a) & (lengths < (b or np.inf))).sum())}
                            for a, b in zip(edges[:-1], edges[1:])]},
        "very_short": {"below_chars": 20, "chunks": int((lengths < 20).sum()),
                       "share": round(float((lengths < 20).mean()), 5)},
        "hygiene": {"letterless_merged": store.letterless_merged,
                    "letterless_chunks": sum(not any(c.isalnum() for c in t) for t in texts)},
        "duplicates": {"distinct_texts": len(counts), "duplicate_chunks": len(texts) - len(counts),
                       "texts_repeated": len(repeated),
                       "most_frequent": [{"text": t, "count": c} for t, c in repeated[:top]]},
    }


# pieces of chunk texts: ASCII, accents, CJK, emoji, letterless punctuation in and out of ASCII, non-ASCII
# digits and letters that str.isalnum() accepts (², Ⅻ, ß), a zero-width space and a combining accent it refuses
PIECES = ["a", "Z", "9", " ", "!", "...", "é", "ß", "日本語", "。", "🙂", "—", "«»", "²", "Ⅻ", "\u200b", "e\u0301",
          "Ünïcödé text", "A sentence that is well over forty characters long, in ASCII."]


def mixed_docs(n_docs=40, seed=0):
    """Documents of chunks built from PIECES, a third of them drawn again from a small pool (exact duplicates,
    many with tied counts), plus empty and one-character chunks."""
    rng = np.random.default_rng(seed)
    pool = ["".join(rng.choice(PIECES, size=rng.integers(1, 4))) for _ in range(25)] + ["", " ", "x", "—"]
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(1, 12))
        docs.append([str(rng.choice(pool)) if rng.random() < 0.35 else "".join(rng.choice(PIECES, rng.integers(0, 8)))
                     for _ in range(n)])
    return docs


def _text_store(root, docs):
    vecs = [np.random.default_rng(d).normal(size=(len(t), 8)).astype(np.float32) for d, t in enumerate(docs)]
    return build_store(root, vecs, texts=docs, fractions=(0.6, 0.2, 0.2))


@pytest.mark.parametrize("block_chunks,block_bytes", [(16_384, 1 << 22), (7, 1 << 20), (1000, 40), (1, 1)])
def test_streamed_card_equals_the_counter_card(tmp_path, block_chunks, block_bytes):
    store = _text_store(tmp_path / "s", mixed_docs())
    assert len(store) > 7 * 20  # many blocks for the small block sizes
    ref = counter_card(store)
    assert ref["hygiene"]["letterless_chunks"] > 0 and ref["duplicates"]["texts_repeated"] > 10
    assert any(not t.isascii() for t in store.texts(range(len(store)))) and "" in store.texts(range(len(store)))
    assert build_card(store, block_chunks=block_chunks, block_bytes=block_bytes) == ref


def test_most_frequent_ties_keep_the_order_of_first_occurrence(tmp_path):
    # "ü", t10 .. t0 and "日本" twice each, first seen in that order; "—" three times, "🙂" once
    twice = ["ü"] + [f"t{i}" for i in range(10, -1, -1)]
    docs = [twice, ["—", "日本"], twice[::-1], ["—", "—", "日本", "🙂"]]
    store = _text_store(tmp_path / "s", docs)
    for blocks in ((16_384, 1 << 22), (3, 5)):
        d = build_card(store, block_chunks=blocks[0], block_bytes=blocks[1])["duplicates"]
        assert d == counter_card(store)["duplicates"]
        assert [f["text"] for f in d["most_frequent"]] == ["—", "ü", "t10", "t9", "t8", "t7", "t6", "t5", "t4", "t3"]
        assert (d["distinct_texts"], d["duplicate_chunks"], d["texts_repeated"]) == (15, 15, 14)
    assert build_card(store, block_chunks=2)["hygiene"]["letterless_chunks"] == 4  # "—" three times, "🙂"


def test_streamed_card_equals_the_counter_card_on_random_unicode(tmp_path):
    rng = np.random.default_rng(1)
    alphabet = [chr(c) for c in rng.integers(1, 0x2FFFF, size=400) if not 0xD800 <= c < 0xE000] + list("ab1 .")
    docs = [["".join(rng.choice(alphabet, size=rng.integers(0, 30))) for _ in range(rng.integers(1, 9))]
            for _ in range(30)]
    docs[3] = docs[7] = docs[11]  # whole documents repeated
    store = _text_store(tmp_path / "s", docs)
    assert build_card(store, block_chunks=5, block_bytes=64) == counter_card(store)


def test_an_import_writes_the_card_and_info_shows_it(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from nextvec.cli import app
    from nextvec.store import ConceptStore
    from nextvec.store.format import read_manifest, write_sealed_json
    from nextvec.vector_import import ImportOptions, import_vectors

    docs = mixed_docs(20, seed=3)
    texts = [t for d in docs for t in d]
    vectors = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    pq.write_table(pa.table({"doc_id": [f"doc{d}" for d, ts in enumerate(docs) for _ in ts], "text": texts,
                             "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 8)}),
                   tmp_path / "in.parquet")
    options = ImportOptions(encoder_name="remote", normalized=False, progress=False)
    import_vectors(tmp_path / "in.parquet", tmp_path / "s", options)
    store = ConceptStore(tmp_path / "s")
    card = json.loads((store.root / "card.json").read_text())
    assert card == counter_card(store) and card["encoder"]["name"] == "remote"
    assert (store.root / "card.md").read_text() == card_markdown(counter_card(store))
    r = CliRunner().invoke(app, ["info", str(store.root)])
    assert r.exit_code == 0, r.output
    assert f"# Data card: {store.root}" in r.output and f"chunks {len(texts)}" in r.output
    # an import killed between finalize and the card: the rerun finds the store complete and writes the card
    (store.root / "card.json").unlink()
    (store.root / "card.md").unlink()
    manifest = read_manifest(store.root)  # the kill came before the manifest listed them
    for name in ("card.json", "card.md"):
        del manifest["files"][name]
    write_sealed_json(store.root / "manifest.json", manifest)
    import_vectors(tmp_path / "in.parquet", tmp_path / "s", options)
    assert json.loads((store.root / "card.json").read_text()) == card
