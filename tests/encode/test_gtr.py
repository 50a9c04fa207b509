"""GTR-T5 as vec2text expects it, checked on a tiny randomly initialised T5 built locally (no hub)."""

import numpy as np
import pytest
import torch

from nextvec.encode.gtr import GTREncoder, masked_mean_pool


def test_masked_mean_pool_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert masked_mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


class _Tok:
    """Whitespace tokenizer over a fixed vocabulary, padding on the right (as T5's tokenizer does)."""

    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        ids = [[(hash(w) % 90) + 2 for w in t.split()][:max_length] + [1] for t in texts]
        n = max(len(x) for x in ids)
        out = {"input_ids": torch.tensor([x + [0] * (n - len(x)) for x in ids]),
               "attention_mask": torch.tensor([[1] * len(x) + [0] * (n - len(x)) for x in ids])}

        class B(dict):
            def to(self, device):
                return self

        return B(out)


@pytest.fixture(scope="module")
def tiny_t5():
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=100, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4, pad_token_id=0)
    return T5EncoderModel(cfg).eval()


def test_gtr_pools_t5_encoder_with_mask_and_no_dense(tiny_t5):
    enc = GTREncoder("tiny", model=tiny_t5, tokenizer=_Tok())
    texts = ["a short one", "a much longer sentence with many more words in it", "mid size text"]
    v = enc.encode(texts, batch_size=2)
    assert v.shape == (3, 16) and v.dtype == np.float32
    tok = _Tok()(texts[:1], True, True, 128, "pt")
    with torch.no_grad():
        h = tiny_t5(input_ids=tok["input_ids"]).last_hidden_state[0]
    np.testing.assert_allclose(v[0], h.mean(0).numpy(), rtol=1e-5, atol=1e-6)  # no Dense, plain mean
    # padding must not change a text's vector: encode alone vs batched with a longer text
    np.testing.assert_allclose(enc.encode(texts[:1])[0], enc.encode(texts[:2])[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(np.linalg.norm(v, axis=1), 1.0)  # raw, as vec2text expects


def test_gtr_l2_variant_and_fingerprint(tiny_t5):
    enc = GTREncoder("some/path/gtr-t5-base", normalize=True, model=tiny_t5, tokenizer=_Tok())
    v = enc.encode(["x y z"])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    fp = enc.fingerprint()
    assert fp["name"] == "gtr-t5-vec2text:gtr-t5-base" and fp["dim"] == 16 and fp["normalized"] is True
    assert "no Dense" in fp["pooling"]


def test_gtr_missing_weights_fail_fast_with_instructions(tmp_path, monkeypatch):
    from nextvec.errors import NextvecError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NextvecError, match="--encoder gtr:DIR"):
        GTREncoder("sentence-transformers/gtr-t5-base")
