import numpy as np
import pytest

from nextvec.encode import load_encoder
from nextvec.errors import NextvecError


def test_unknown_spec_is_refused():
    with pytest.raises(NextvecError, match="unknown encoder"):
        load_encoder("word2vec")


@pytest.mark.slow
def test_embedded_minilm_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = load_encoder("minilm")
    v = enc.encode(["The cat sat on the mat.", "A cat was sitting on a mat.", "Stock markets fell sharply."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3  # paraphrases closer than an unrelated sentence
    fp = enc.fingerprint()
    assert fp["name"] == "sentence-transformers/all-MiniLM-L6-v2" and fp["dim"] == 384 and fp["normalized"]


def test_hash_encoder_is_deterministic_and_normalised():
    enc = load_encoder("hash:32")
    v = enc.encode(["The cat sat.", "the CAT sat", "", "dogs bark"])
    assert v.shape == (4, 32)
    np.testing.assert_array_equal(v[0], v[1])  # case and punctuation do not matter
    assert not v[2].any()  # empty text -> zero vector, no NaN
    np.testing.assert_allclose(np.linalg.norm(v[[0, 3]], axis=1), 1.0, rtol=1e-6)
    assert enc.fingerprint()["name"] == "hash-bow-32"
    with pytest.raises(NextvecError, match="bad hash encoder"):
        load_encoder("hash:1")
