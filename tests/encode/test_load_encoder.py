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
