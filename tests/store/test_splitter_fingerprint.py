"""Stores whose chunks were split by different splitters are never mixed silently."""

import json
import warnings

import pytest

from fake_encoder import HashEncoder
from nextvec.errors import FingerprintMismatch, NextvecError, SplitterVersionWarning, check_fingerprint
from nextvec.ingest import IngestOptions, ingest

TEXT = "Dr. Perry said so. Mrs. Weston agreed. Mr. Knightley came to call at noon. The day was fine."


@pytest.fixture
def source(tmp_path):
    p = tmp_path / "docs.jsonl"
    p.write_text("".join(json.dumps({"id": f"d{i}", "text": f"{TEXT} Day {i}."}) + "\n" for i in range(6)))
    return p


def _ingest(source, out, splitter):
    return ingest(str(source), out, IngestOptions(splitter=splitter, progress=False), encoder=HashEncoder(),
                  log=lambda m: None)


def test_store_records_its_splitter_and_a_mismatch_is_refused(source, tmp_path):
    from nextvec.store import ConceptStore

    _ingest(source, tmp_path / "a", "blingfire+repair")
    _ingest(source, tmp_path / "b", "blingfire")
    a, b = ConceptStore(tmp_path / "a"), ConceptStore(tmp_path / "b")
    assert a.splitter["name"] == "blingfire+repair" and "blingfire 0.1" in a.splitter["version"]
    assert a.fingerprint["splitter"] == a.splitter and b.splitter["name"] == "blingfire"
    texts_a, texts_b = a.texts(range(len(a))), b.texts(range(len(b)))
    assert "Mr." in texts_b and "Mr." not in texts_a  # bare blingfire cuts a lone "Mr." off
    check_fingerprint(a.fingerprint, a.fingerprint, "itself")
    with pytest.raises(FingerprintMismatch, match="splitter mismatch.*'blingfire\\+repair'.*'blingfire'"):
        check_fingerprint(a.fingerprint, b.fingerprint, f"the store at {b.root}")


def test_resuming_with_another_splitter_is_refused(source, tmp_path):
    _ingest(source, tmp_path / "a", "blingfire+repair")
    with pytest.raises(NextvecError, match="other parameters"):
        _ingest(source, tmp_path / "a", "blingfire")


def test_another_version_is_flagged_and_unrecorded_splitters_are_not_compared():
    enc = {"name": "e", "dim": 4, "pooling": "mean", "normalized": True}
    new = dict(enc, splitter={"name": "blingfire+repair", "version": "blingfire 0.1.8 + nextvec repair 1"})
    newer = dict(enc, splitter={"name": "blingfire+repair", "version": "blingfire 0.1.8 + nextvec repair 2"})
    with pytest.warns(SplitterVersionWarning, match="another version"):
        check_fingerprint(new, newer, "the checkpoint")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_fingerprint(new, enc, "an encoder")  # encoders and old stores record no splitter
        check_fingerprint(enc, new, "an old store")


def test_a_consumer_refuses_a_model_trained_on_chunks_split_otherwise(source, tmp_path):
    """The server opens a checkpoint's metadata against a store: the fingerprint check sees the splitter."""
    import torch

    from nextvec.models.base import Prediction
    from nextvec.session import Session
    from nextvec.store import ConceptStore

    class CopyLast(torch.nn.Module):
        name = "copy-last"

        def predict(self, context, mask):
            return Prediction(context[:, -1], torch.nn.functional.normalize(context[:, -1], dim=-1))

    _ingest(source, tmp_path / "a", "blingfire+repair")
    _ingest(source, tmp_path / "b", "blingfire")
    a, b = ConceptStore(tmp_path / "a"), ConceptStore(tmp_path / "b")
    meta = {"fingerprint": a.fingerprint, "dim": a.dim, "context_length": 4, "step": 1}  # trained on a
    Session.assemble(CopyLast(), meta, a, encoder=HashEncoder())
    with pytest.raises(FingerprintMismatch, match="splitter mismatch"):
        Session.assemble(CopyLast(), meta, b, encoder=HashEncoder())
