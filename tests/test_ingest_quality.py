"""Ingest's quality side: the splitter choice, chunk hygiene counts and the data card, through the CLI."""

import json

from typer.testing import CliRunner

from nextvec.cli import app
from nextvec.store import ConceptStore

runner = CliRunner()
DOCS = [
    {"id": "a", "text": 'He left. "\n\nMr. Knightley came to call. Dr. Perry said so.\n\n* * * * *\n\nThe end came.'},
    {"id": "b", "text": "(\n\nAn aside began here. It went on.\n\n)"},
    {"id": "c", "text": "... !!! ---"},  # nothing but punctuation: skipped
    {"id": "d", "sentences": [".", "Pre-split sentences get the same hygiene.", "?"]},
]


def _ingest(tmp_path, *extra):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    out = tmp_path / "store"
    r = runner.invoke(app, ["ingest", str(src), "--out", str(out), "--encoder", "hash:16", "--split", "1,0,0", *extra])
    assert r.exit_code == 0, r.output
    return ConceptStore(out), r.output


def test_ingest_merges_letterless_chunks_and_reports_it(tmp_path):
    store, output = _ingest(tmp_path)
    texts = store.texts(range(len(store)))
    assert all(any(ch.isalnum() for ch in t) for t in texts)
    assert texts == ['He left. "', "Mr. Knightley came to call.", "Dr. Perry said so. * * * * *", "The end came.",
                     "( An aside began here.", "It went on. )", ". Pre-split sentences get the same hygiene. ?"]
    # a: '"' and '* * * * *'; b: '(' and ')'; d: '.' and '?' (c, all punctuation, is skipped, not merged)
    assert store.letterless_merged == 6 and store.n_docs == 3
    assert "6 chunks without a letter or digit merged into a neighbour" in output
    assert "card.md" in output


def test_info_shows_the_card_and_splitter(tmp_path):
    store, _ = _ingest(tmp_path, "--splitter", "blingfire")
    assert store.splitter["name"] == "blingfire"
    r = runner.invoke(app, ["info", str(store.root)])
    assert r.exit_code == 0, r.output
    assert "splitter  blingfire (blingfire 0.1" in r.output and "# Data card" in r.output
    assert "Chunks without a letter or digit: 0 (merged into a neighbour at ingest: 6)" in r.output
    card = json.loads((store.root / "card.json").read_text())
    assert card["splitter"]["name"] == "blingfire" and card["chunks"] == len(store)
    r = runner.invoke(app, ["info", str(store.root), "--json"])
    assert json.loads(r.output)["card"] == card


def test_unknown_splitter_is_refused_before_any_work(tmp_path):
    r = runner.invoke(app, ["ingest", "nowhere.jsonl", "--out", str(tmp_path / "s"), "--splitter", "nltk"])
    assert r.exit_code != 0 and "unknown splitter 'nltk'" in str(r.exception) + r.output
    assert not (tmp_path / "s").exists()
