"""Plumbing of the vec2text decoder, with a fake `vec2text` module standing in for the real weights."""

import os
import sys
import types

import numpy as np
import pytest
import torch

from nextvec.decode.vec2text import Vec2TextDecoder, check_vec2text_fingerprint, hub_settings, load_gtr_corrector
from nextvec.errors import NextvecError

GTR_FP = {"name": "gtr-t5-vec2text:gtr-t5-base", "dim": 768, "pooling": "masked-mean (T5 encoder, no Dense)",
          "normalized": False, "version": "x"}


class FakeCorrector:
    """Has the attributes the decoder touches: a model (for its device), a tokenizer, an embedder."""

    def __init__(self):
        self.model = torch.nn.Linear(2, 2)

        class Trainer:
            @staticmethod
            def call_embedding_model(input_ids, attention_mask):
                return input_ids.float()  # (B, 768) "embedding" = the fake token ids below

        self.inversion_trainer = Trainer()

    def embedder_tokenizer(self, texts, **kw):
        # Text "v<i>" embeds to the i-th unit vector, so a perfect inversion scores 1.0.
        ids = torch.zeros(len(texts), 768, dtype=torch.long)
        for r, t in enumerate(texts):
            ids[r, int(t[1:])] = 1

        class Batch(dict):
            def to(self, device):
                return self

        return Batch(input_ids=ids, attention_mask=torch.ones_like(ids))


@pytest.fixture
def fake_vec2text(monkeypatch):
    calls = {"load": [], "invert": []}
    mod = types.ModuleType("vec2text")

    def load_pretrained_corrector(name):
        import huggingface_hub.constants as c

        calls["load"].append({"name": name, "env": os.environ.get("HF_HUB_OFFLINE"), "const": c.HF_HUB_OFFLINE,
                              "cache": c.HF_HUB_CACHE})
        if mod.fail:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
        return FakeCorrector()

    def invert_embeddings(embeddings, corrector, num_steps=None, sequence_beam_width=0):
        calls["invert"].append({"n": len(embeddings), "num_steps": num_steps, "beam": sequence_beam_width})
        return [f"v{int(i)}" for i in embeddings.argmax(dim=1)]  # a perfect fake inversion

    mod.fail = False
    mod.load_pretrained_corrector = load_pretrained_corrector
    mod.invert_embeddings = invert_embeddings
    monkeypatch.setitem(sys.modules, "vec2text", mod)
    mod.calls = calls
    return mod


@pytest.mark.parametrize("fp, why", [
    ({**GTR_FP, "name": "sentence-transformers/all-MiniLM-L6-v2", "dim": 384}, "only inverts vectors from the GTR"),
    ({**GTR_FP, "dim": 384}, "768-d"),
    ({**GTR_FP, "normalized": True}, "unnormalised"),
])
def test_refuses_stores_it_cannot_invert(fp, why, fake_vec2text):
    with pytest.raises(NextvecError, match=why):
        Vec2TextDecoder(fp)
    assert fake_vec2text.calls["load"] == []  # refused before touching the weights


def test_loads_gtr_base_offline_and_passes_steps_and_beam(fake_vec2text):
    import huggingface_hub.constants as c

    before = (os.environ.get("HF_HUB_OFFLINE"), c.HF_HUB_OFFLINE)
    dec = Vec2TextDecoder(GTR_FP, num_steps=7, sequence_beam_width=3, batch_size=2)
    (load,) = fake_vec2text.calls["load"]
    assert load["name"] == "gtr-base" and load["env"] == "1" and load["const"] is True
    assert (os.environ.get("HF_HUB_OFFLINE"), c.HF_HUB_OFFLINE) == before  # restored afterwards
    v = np.zeros((3, 768), np.float32)
    v[0, 5], v[1, 9], v[2, 5] = 2.0, 1.0, 1.0
    v[2, 6] = 1.0  # argmax 5, but not a perfect inversion: round-trip cosine 1/sqrt(2)
    out = dec.decode(v, k=4)
    assert [c[0][0] for c in out] == ["v5", "v9", "v5"]
    assert [len(c) for c in out] == [1, 1, 1]  # one text per vector whatever k is
    assert out[0][0][1] == pytest.approx(1.0) and out[2][0][1] == pytest.approx(2 ** -0.5)
    assert fake_vec2text.calls["invert"] == [{"n": 2, "num_steps": 7, "beam": 3}, {"n": 1, "num_steps": 7, "beam": 3}]


def test_zero_steps_means_hypothesis_only(fake_vec2text):
    Vec2TextDecoder(GTR_FP, num_steps=0).decode(np.eye(768, dtype=np.float32)[:1])
    assert fake_vec2text.calls["invert"][0]["num_steps"] is None
    with pytest.raises(NextvecError, match="needs correction steps"):
        Vec2TextDecoder(GTR_FP, num_steps=0, sequence_beam_width=2)


def test_online_opt_in_leaves_the_hub_online(fake_vec2text):
    Vec2TextDecoder(GTR_FP, allow_online=True)
    assert fake_vec2text.calls["load"][0]["const"] is False


def test_missing_weights_fail_fast_with_instructions(fake_vec2text, tmp_path):
    fake_vec2text.fail = True
    with pytest.raises(NextvecError) as e:
        Vec2TextDecoder(GTR_FP, cache_dir=tmp_path)
    msg = str(e.value)
    assert "jxm/gtr__nq__32" in msg and "online machine" in msg and "local path" in msg and str(tmp_path) in msg
    assert fake_vec2text.calls["load"][0]["cache"] == str(tmp_path)
    with pytest.raises(NextvecError, match="does not exist"):
        load_gtr_corrector(cache_dir=tmp_path / "missing")


def test_without_the_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vec2text", None)  # import vec2text -> ImportError
    with pytest.raises(NextvecError, match=r"nextvec\[vec2text\]"):
        Vec2TextDecoder(GTR_FP)


def test_decode_refuses_wrong_dimension(fake_vec2text):
    with pytest.raises(NextvecError, match="768"):
        Vec2TextDecoder(GTR_FP).decode(np.zeros((1, 384), np.float32))


def test_hub_settings_patches_and_restores(monkeypatch):
    import huggingface_hub.constants as c

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    saved = c.HF_HUB_OFFLINE, c.HF_HUB_CACHE
    with hub_settings(offline=True, cache_dir="/tmp/x"):
        assert os.environ["HF_HUB_OFFLINE"] == "1" and c.HF_HUB_OFFLINE is True and c.HF_HUB_CACHE == "/tmp/x"
    assert "HF_HUB_OFFLINE" not in os.environ and (c.HF_HUB_OFFLINE, c.HF_HUB_CACHE) == saved


def test_check_accepts_the_gtr_fingerprint():
    check_vec2text_fingerprint(GTR_FP)  # no error
