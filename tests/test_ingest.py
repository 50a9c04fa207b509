"""Ingest end to end with a small deterministic encoder (fast) and once with the real default (slow)."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.ingest import IngestOptions, ingest
from nextvec.store import ConceptStore


class HashEncoder:
    """Deterministic bag-of-words hashing encoder: a real text->vector function, fast enough for tests."""

    dim = 16

    def __init__(self, name="hash-encoder"):
        self.name = name
        self.calls = 0

    def encode(self, texts, batch_size=64, show_progress=False):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, sum(map(ord, w)) % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(n == 0, 1, n)

    def fingerprint(self):
        return {"name": self.name, "dim": self.dim, "pooling": "bow", "normalized": True, "version": "1"}


def write_corpus(path, n_docs=30, bad=True):
    lines = []
    for d in range(n_docs):
        sentences = " ".join(f"Document {d} says thing number {p} about topic {d % 4}." for p in range(6 + d % 5))
        lines.append(json.dumps({"id": f"doc-{d}", "text": sentences}))
        if bad and d % 10 == 3:
            lines.append("{broken json")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_ingest_jsonl_counts_splits_and_skips(tmp_path, capsys):
    src = write_corpus(tmp_path / "c.jsonl")
    summary = ingest(str(src), tmp_path / "s", IngestOptions(shard_chunks=40, progress=False), encoder=HashEncoder())
    store = ConceptStore(tmp_path / "s")
    assert summary["skipped"] == 3 and store.n_docs == 30
    assert len(store) == sum(6 + d % 5 for d in range(30))
    assert "malformed JSON" in capsys.readouterr().err
    assert store.text(0) == "Document 0 says thing number 0 about topic 0."
    assert sum(v["documents"] for v in summary["splits"].values()) == 30


def test_killed_ingest_resumes_without_duplicates(tmp_path):
    """Simulate a kill: the encoder dies on its 3rd shard; rerunning finishes with the same store."""
    src = write_corpus(tmp_path / "c.jsonl", bad=False)
    ingest(str(src), tmp_path / "ref", IngestOptions(shard_chunks=40, progress=False), encoder=HashEncoder())

    class Dying(HashEncoder):
        def encode(self, texts, **kw):
            if self.calls == 2:
                raise KeyboardInterrupt("killed")
            return super().encode(texts, **kw)

    with pytest.raises(KeyboardInterrupt):
        ingest(str(src), tmp_path / "s", IngestOptions(shard_chunks=40, progress=False), encoder=Dying())
    with pytest.raises(NextvecError, match="incomplete"):
        ConceptStore(tmp_path / "s")
    second = HashEncoder()
    ingest(str(src), tmp_path / "s", IngestOptions(shard_chunks=40, progress=False), encoder=second)
    a, b = ConceptStore(tmp_path / "ref"), ConceptStore(tmp_path / "s")
    assert a.texts(range(len(a))) == b.texts(range(len(b)))
    np.testing.assert_array_equal(a.get(slice(None)), b.get(slice(None)))
    np.testing.assert_array_equal(a.doc_split, b.doc_split)
    assert second.calls == len(b.manifest["shards"]) - 2  # only the shards the kill lost were encoded again


def test_rerun_of_complete_store_is_a_no_op(tmp_path):
    src = write_corpus(tmp_path / "c.jsonl", n_docs=5, bad=False)
    ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=HashEncoder())
    enc = HashEncoder()
    ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=enc)
    assert enc.calls == 0


def test_other_encoder_refused(tmp_path):
    src = write_corpus(tmp_path / "c.jsonl", n_docs=5, bad=False)
    ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=HashEncoder())
    with pytest.raises(FingerprintMismatch, match="other-encoder"):
        ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=HashEncoder("other-encoder"))


def test_source_with_no_usable_document(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text("{nope\n" + json.dumps({"id": 1, "text": ""}) + "\n")
    with pytest.raises(NextvecError, match="no usable document"):
        ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=HashEncoder())


def test_cli_info_json(tmp_path):
    from nextvec.cli import app

    src = write_corpus(tmp_path / "c.jsonl", n_docs=6, bad=False)
    ingest(str(src), tmp_path / "s", IngestOptions(progress=False), encoder=HashEncoder())
    r = CliRunner().invoke(app, ["info", str(tmp_path / "s"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert {"documents", "chunks", "dim", "encoder", "splits"} <= set(info)
    assert info["documents"] == 6 and info["dim"] == 16
    assert sum(s["chunks"] for s in info["splits"].values()) == info["chunks"]


def test_cli_reports_errors_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "nextvec", "info", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2 and "not a concept store" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_real_encoder_ingest_of_a_folder(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The river rose after the storm. Farmers moved their cattle uphill. The water fell a week later.")
    (docs / "b.md").write_text("# Notes\n\nCompilers translate source code. Linkers join object files into programs.")
    summary = ingest(str(docs), tmp_path / "s", IngestOptions(encoder="minilm", progress=False))
    store = ConceptStore(tmp_path / "s")
    assert summary["chunks"] == 6 and store.dim == 384
    assert store.fingerprint["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    np.testing.assert_allclose(np.linalg.norm(store.get(slice(None)), axis=1), 1.0, atol=1e-5)
