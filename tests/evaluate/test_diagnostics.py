"""Collapse diagnosis: an always-the-mean model is flagged, a healthy one is not; decoder A/B/C."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalkit import AlwaysMean, OracleNext, make_store, random_docs
from nextvec.evaluate import diagnose_run, format_diagnosis, write_json
from nextvec.decode.nearest import RetrievalDecoder
from nextvec.evaluate.diagnostics import decoder_abc, retrieval_decoder
from nextvec.options import DiagnoseOptions
from nextvec.session import Session

DIAGNOSE_KEYS = {"std_ratio_median", "rankme_pred", "rankme_target", "pairwise_cos_pred", "pairwise_cos_target",
                 "mean_baseline_cosine", "model_cosine", "abc", "collapsed", "verdict", "checks", "thresholds"}


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "s", random_docs(n_docs=60, dim=16, seed=3))


def test_always_mean_is_collapsed(store):
    d = diagnose_run(Session.assemble(AlwaysMean(store), {"context_length": 3}, store), DiagnoseOptions(n_decode=20))
    assert d["collapsed"] is True
    assert d["verdict"].startswith("COLLAPSED")
    status = {c["check"]: c["status"] for c in d["checks"]}
    assert status["std_ratio"] == "fail" and status["rank_ratio"] == "fail" and status["closer_to_mean"] == "fail"
    assert d["std_ratio_median"] == pytest.approx(0.0, abs=1e-6)
    assert d["rankme_pred"] == pytest.approx(1.0, abs=1e-2)
    assert d["pairwise_cos_pred"] == pytest.approx(1.0)
    assert d["closer_to_mean_fraction"] == 1.0


def test_noisy_oracle_is_healthy(store):
    d = diagnose_run(Session.assemble(OracleNext(store, noise=0.05), {"context_length": 3}, store), DiagnoseOptions(n_decode=40))
    assert d["collapsed"] is False
    assert d["verdict"].startswith("not collapsed")
    assert 0.9 < d["std_ratio_median"] < 1.25
    assert d["rankme_pred"] / d["rankme_target"] > 0.9
    assert d["model_cosine"] > 0.95 > d["mean_baseline_cosine"]
    assert d["abc"]["C"]["r@1"] == 1.0 and d["abc"]["C"]["exact_match"] == 1.0  # noise 0.05 keeps the nearest chunk


def test_schema_and_strict_json(store, tmp_path):
    d = diagnose_run(Session.assemble(OracleNext(store, noise=0.05), {"context_length": 3}, store), DiagnoseOptions(n_decode=10))
    assert DIAGNOSE_KEYS <= set(d)
    for test in ("A", "B", "C"):
        assert {"exact_match", "cosine"} <= set(d["abc"][test])
    assert "true_rank" in d["abc"]["C"]
    path = write_json(d, tmp_path / "d.json")
    loaded = json.loads(path.read_text())  # strict JSON: NaN written as null
    assert DIAGNOSE_KEYS <= set(loaded)
    assert len(loaded["std_ratio_per_dim"]) == 16
    text = format_diagnosis(d)
    assert "healthy 0.8-1.25, collapsed < 0.5" in text and "verdict:" in text


def test_decoder_abc_by_hand(tmp_path):
    eye = np.eye(6, dtype=np.float32)
    store = make_store(tmp_path / "s", [eye[:3], eye[3:]], splits=[0, 2])
    # C: the model answers chunk 3's vector for target 4 (wrong) and chunk 5's for target 5 (right)
    abc = decoder_abc(store, np.array([4, 5]), np.stack([2 * eye[3], eye[5]]), decoder=RetrievalDecoder(store))
    assert abc["A"]["exact_match"] == 1.0 and abc["B"]["exact_match"] == 1.0 and abc["A"]["cosine"] == 1.0
    assert abc["C"]["exact_match"] == 0.5 and abc["C"]["cosine"] == pytest.approx(0.5)
    # target 4 vs query e3: e3 higher, 4 ties among 5 others -> rank 1 + 1 + 2 = 4; target 5: rank 1
    assert abc["C"]["true_rank_mean"] == pytest.approx(2.5) and abc["C"]["r@1"] == 0.5


def test_decoder_abc_with_a_text_only_decoder(tmp_path):
    eye = np.eye(6, dtype=np.float32)
    store = make_store(tmp_path / "s", [eye[:3], eye[3:]], splits=[0, 2])

    class TextOnly:  # like vec2text: answers text, says nothing about which chunk
        def decode(self, vectors, k=1):
            return [[("d1 s0", 1.0)] for _ in vectors]

    abc = decoder_abc(store, np.array([3, 4]), np.stack([eye[3], eye[4]]), decoder=TextOnly())
    assert abc["C"]["exact_match"] == 0.5  # 'd1 s0' is chunk 3's text
    assert abc["C"]["cosine"] == pytest.approx(0.5)  # the decoded text is found in the store: e3 vs e3, e3 vs e4
    assert "true_rank" not in abc["C"]


def test_retrieval_decoder_answers_a_chunk_its_own_text(tiny_store):
    dec = retrieval_decoder(tiny_store, split="train")
    ids = tiny_store.split_chunks("train")[[0, 5]]
    (text0, score0), = dec.decode(tiny_store.get(ids[:1]), k=1)[0]
    assert isinstance(dec, RetrievalDecoder) and text0 == tiny_store.texts(ids[:1])[0]
    assert score0 == pytest.approx(1.0, abs=1e-5)
    test_chunk = tiny_store.split_chunks("test")[0]  # not in the train bank: never answered
    assert all(t != tiny_store.texts([test_chunk])[0] for t, _ in dec.decode(tiny_store.get([test_chunk]), k=3)[0])
