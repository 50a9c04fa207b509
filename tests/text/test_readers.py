import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from nextvec.errors import NextvecError
from nextvec.text import Document, Skipped, read_documents
from nextvec.text.readers import html_to_text, markdown_to_text


def test_folder_reader_orders_files_and_skips_bad_ones(tmp_path):
    (tmp_path / "b.txt").write_text("Second file. It has two sentences.")
    (tmp_path / "a.md").write_text("# Title\n\nSome *prose* with a [link](http://x).\n\n```\ncode();\n```\n")
    (tmp_path / "c.html").write_text("<html><head><title>T</title><style>p{}</style></head><body><p>Hello there.</p><script>x()</script></body></html>")
    (tmp_path / "d.txt").write_bytes(b"caf\xe9 latin-1 text")
    (tmp_path / "e.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "f.txt").write_text("   \n")
    (tmp_path / "ignored.bin").write_text("not a text suffix")
    recs = list(read_documents(tmp_path))
    assert [type(r).__name__ for r in recs] == ["Document", "Document", "Document", "Skipped", "Skipped", "Skipped"]
    assert recs[0].id == "a.md" and "code()" not in recs[0].text and "link" in recs[0].text and "*" not in recs[0].text
    assert "Hello there." in recs[2].text and "x()" not in recs[2].text and "p{}" not in recs[2].text
    assert [r.reason.split(" ")[0] for r in recs[3:]] == ["not", "binary", "empty"]


def test_jsonl_reader_text_sentences_and_malformed(tmp_path):
    p = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "One. Two."}),
        json.dumps({"id": 7, "sentences": ["pre-split one", "pre-split two"]}),
        "{not json",
        json.dumps({"id": "c", "text": ""}),
        json.dumps([1, 2]),
        "",
        json.dumps({"id": "d", "sentences": "not a list"}),
        json.dumps({"text": "no id here."}),
    ]
    p.write_text("\n".join(lines) + "\n")
    recs = list(read_documents(p))
    assert isinstance(recs[0], Document) and recs[0].text == "One. Two."
    assert recs[1] == Document("7", sentences=["pre-split one", "pre-split two"])
    assert isinstance(recs[2], Skipped) and "malformed JSON" in recs[2].reason and recs[2].where == "docs.jsonl:3"
    assert isinstance(recs[3], Skipped) and recs[3].reason == "empty document"
    assert isinstance(recs[4], Skipped) and isinstance(recs[5], Skipped)
    assert recs[6] == Document("docs.jsonl:8", text="no id here.")
    assert len(recs) == 7


def test_parquet_reader(tmp_path):
    p = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["x", "y", "z"], "text": ["Hello. World.", None, "   "]}), p)
    recs = list(read_documents(p))
    assert recs[0] == Document("x", text="Hello. World.")
    assert all(isinstance(r, Skipped) for r in recs[1:])


def test_parquet_without_text_column_is_refused(tmp_path):
    p = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"body": ["x"]}), p)
    with pytest.raises(NextvecError, match="'text' or 'sentences'"):
        list(read_documents(p))


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(NextvecError, match="does not exist"):
        read_documents(tmp_path / "nope")


def test_html_and_markdown_cleaning():
    assert html_to_text("<p>a</p><p>b &amp; c</p>").split() == ["a", "b", "&", "c"]
    assert markdown_to_text("## Head ##\n![img](x.png) **bold**").split() == ["Head", "img", "bold"]


def test_records_are_counted_before_reading(tmp_path):
    from nextvec.text.readers import count_records

    j = tmp_path / "d.jsonl"
    j.write_text('{"id": "a", "text": "x"}\n\n{"id": "b", "text": "y"}\nnot json\n')
    assert count_records(j) == 3 == len(list(read_documents(j)))  # the malformed line is a (skipped) record
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("a.txt", "b.md", "c.bin"):
        (folder / name).write_text("Some text.")
    assert count_records(folder) == 2 == len(list(read_documents(folder)))
    assert count_records(tmp_path / "missing.jsonl") is None
