"""The data card's counts on a hand-made store (every number worked out by hand)."""

import json

import numpy as np

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
