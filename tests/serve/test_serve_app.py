"""The HTTP API with an injected tiny model and a word-hashing encoder (no real weights, fast)."""

import asyncio
import json
import threading
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from storekit import build_store
from fake_encoder import HashEncoder
from nextvec.decode.spec import attach_decoder
from nextvec.errors import FingerprintMismatch, NextvecError
from nextvec.models.base import Prediction
from nextvec.generate import GenerateOptions
from nextvec.serve.app import create_app
from nextvec.session import Session

D = 16
DOCS = [["the cat sat on the mat", "it purred all night", "then the dog barked"],
        ["markets fell sharply today", "investors sold their bonds", "gold prices rose again"]]


class Roll(torch.nn.Module):
    """y_dec = 2 * (last real context vector rolled by one dim); y_cos its unit version. Records batch sizes."""

    name = "roll"

    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))
        self.delay = delay
        self.gate = gate  # when set, the FIRST model call blocks until the test opens the gate
        self.batch_sizes: list[int] = []

    def predict(self, context, mask):
        assert mask[:, -1].all()
        self.batch_sizes.append(context.shape[0])
        if self.gate is not None and len(self.batch_sizes) == 1:
            self.gate_timed_out = not self.gate.wait(timeout=5)  # times out only if the loop was blocked
        time.sleep(self.delay)
        y = 2 * torch.roll(context[:, -1], 1, dims=-1) * self.w
        return Prediction(y, torch.nn.functional.normalize(y, dim=-1))


class MaskedMean(torch.nn.Module):
    name = "mean"

    def predict(self, context, mask):
        m = mask.unsqueeze(-1).float()
        y = (context * m).sum(1) / m.sum(1)
        return Prediction(y, torch.nn.functional.normalize(y, dim=-1))


@pytest.fixture
def parts(tmp_path):
    enc = HashEncoder(dim=D)
    store = build_store(tmp_path / "store", [enc.encode(d) for d in DOCS], texts=DOCS, fingerprint=enc.fingerprint())
    meta = {"fingerprint": store.fingerprint, "dim": D, "context_length": 4, "step": 12}
    return store, enc, meta


def make_client(parts, model=None, **kw):
    store, enc, meta = parts
    app_kw = {k: kw.pop(k) for k in ("api_key", "limits") if k in kw}
    session = Session.assemble(model or Roll(), kw.pop("meta", meta), store, encoder=kw.pop("encoder", enc), **kw)
    return TestClient(create_app(session, **app_kw))


def test_health_reports_model_encoder_and_store(parts):
    with make_client(parts) as c:
        h = c.get("/health").json()
    assert h["model"] == "roll" and h["step"] == 12 and h["context_length"] == 4
    assert h["encoder"]["name"] == "test-hash" and h["store"]["chunks"] == 6 and h["store"]["dim"] == D


def test_encode_returns_the_encoder_vectors(parts):
    store, enc, _ = parts
    with make_client(parts) as c:
        r = c.post("/encode", json={"texts": ["the cat sat on the mat", "gold"]})
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["vectors"], enc.encode(["the cat sat on the mat", "gold"]), atol=1e-6)


def test_predict_from_vectors_and_texts(parts):
    store, enc, _ = parts
    ctx = store.get([0, 1])
    want = 2 * np.roll(ctx[-1], 1)
    with make_client(parts) as c:
        dec = c.post("/predict", json={"context_vectors": ctx.tolist()}).json()
        cos = c.post("/predict", json={"context_vectors": ctx.tolist(), "output_type": "cosine"}).json()
        txt = c.post("/predict", json={"context_texts": ["the cat sat on the mat", "it purred all night"]}).json()
    np.testing.assert_allclose(dec["vector"], want, atol=1e-6)
    np.testing.assert_allclose(cos["vector"], want / np.linalg.norm(want), atol=1e-6)
    np.testing.assert_allclose(txt["vector"], want, atol=1e-6)
    assert dec["output_type"] == "decoder" and cos["output_type"] == "cosine" and dec["context_used"] == 2


def test_predict_keeps_the_last_context_length_vectors(parts):
    store, enc, meta = parts
    v = np.eye(D, dtype=np.float32)[:6]  # 6 vectors, context_length 4: mean of e2..e5
    with make_client(parts, model=MaskedMean()) as c:
        r = c.post("/predict", json={"context_vectors": v.tolist()}).json()
    np.testing.assert_allclose(r["vector"], v[2:].mean(0), atol=1e-6)
    assert r["context_given"] == 6 and r["context_used"] == 4


def test_decode_returns_the_exact_chunk_text(parts):
    store, enc, _ = parts
    with make_client(parts) as c:
        r = c.post("/decode", json={"vectors": enc.encode(["investors sold their bonds"]).tolist(), "k": 3}).json()
    (cands,) = r["results"]
    assert cands[0]["text"] == "investors sold their bonds" and cands[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert len(cands) == 3 and cands[0]["score"] >= cands[1]["score"] >= cands[2]["score"]


def test_generate_matches_the_library(parts):
    from nextvec.generate import generate

    store, enc, meta = parts
    with make_client(parts) as c:
        r = c.post("/generate", json={"prompt": "The cat sat on the mat. It purred all night.", "steps": 3})
    assert r.status_code == 200, r.text
    want = generate(Session.assemble(Roll(), {"context_length": 4}, store, encoder=enc),
                    "The cat sat on the mat. It purred all night.", GenerateOptions(steps=3))
    got = r.json()
    assert got["continuation"] == want["continuation"] and got["stop_reason"] == want["stop_reason"]
    assert got["prompt_sentences"] == ["The cat sat on the mat.", "It purred all night."]


def _vec(n=1, dim=D):
    return np.full((n, dim), 0.1).tolist()


BAD = [
    ("/predict", {"context_vectors": _vec(2, D - 1)}, 422, "is 15-d; this model works in 16-d"),
    ("/decode", {"vectors": _vec(1, D + 1)}, 422, "16-d"),
    ("/decode", {"vectors": [[0.1] * D, [0.1] * 3]}, 422, "vectors[1] is 3-d"),
    ("/decode", '{"vectors": [[NaN' + ", 0.1" * (D - 1) + "]]}", 422, "NaN or inf"),
    ("/predict", '{"context_vectors": [[Infinity' + ", 0.1" * (D - 1) + "]]}", 422, "NaN or inf"),
    ("/decode", {"vectors": [[1e39] + [0.1] * (D - 1)]}, 422, "too large for float32"),
    ("/decode", {"vectors": []}, 422, "at least 1"),
    ("/encode", {"texts": []}, 422, "at least 1"),
    ("/encode", {"texts": ["ok", "   "]}, 422, "texts[1] is empty"),
    ("/encode", {"texts": ["x" * 101]}, 422, "101 characters; the limit is 100"),
    ("/encode", {"texts": ["a"] * 5}, 422, "at most 4"),
    ("/decode", {"vectors": _vec(9)}, 422, "at most 8"),
    ("/predict", {"context_vectors": _vec(9)}, 422, "at most 8"),
    ("/decode", {"vectors": _vec(1), "k": 0}, 422, "greater than or equal to 1"),
    ("/decode", {"vectors": _vec(1), "k": 6}, 422, "less than or equal to 5"),
    ("/decode", {"vectors": [["a"] * D]}, 422, "valid number"),
    ("/decode", {"vectors": _vec(1), "extra": 1}, 422, "Extra inputs"),
    ("/predict", {"context_vectors": _vec(1), "context_texts": ["hi"]}, 422, "exactly one of"),
    ("/predict", {}, 422, "exactly one of"),
    ("/predict", {"context_vectors": _vec(1), "output_type": "raw"}, 422, "decoder"),
    ("/generate", {"prompt": "  "}, 422, "prompt is empty"),
    ("/generate", {"prompt": "hi.", "steps": 7}, 422, "less than or equal to 6"),
    ("/generate", {"prompt": "hi.", "stop_cos": 2}, 422, "less than or equal to 1"),
    ("/generate", {"prompt": "x" * 201}, 422, "at most 200"),
    ("/decode", "{not json", 422, "JSON"),
    ("/decode", {"vectors": _vec(8, D * 16)}, 413, "over the limit"),
]


@pytest.mark.parametrize("path, body, status, msg", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_gets_a_clear_4xx(parts, path, body, status, msg):
    limits = {"max_texts": 4, "max_chars": 100, "max_prompt_chars": 200, "max_vectors": 8, "max_k": 5,
              "max_steps": 6, "max_body_bytes": 4000}
    with make_client(parts, limits=limits) as c:
        if isinstance(body, str):
            r = c.post(path, content=body, headers={"content-type": "application/json"})
        else:
            r = c.post(path, json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert msg in (detail if isinstance(detail, str) else json.dumps(detail)), detail
    assert len(r.text) < 3000  # never echoes the whole input back


def test_body_limit_also_counts_streamed_bodies(parts):
    with make_client(parts, limits={"max_body_bytes": 2000}) as c:
        big = json.dumps({"vectors": _vec(8)}, indent=8).encode()  # valid, and padded past the limit
        r = c.post("/decode", content=iter([big[:1000], big[1000:]]), headers={"content-type": "application/json"})
    assert r.status_code == 413 and len(big) > 2000


def test_api_key_guards_everything_but_health_and_docs(parts):
    with make_client(parts, api_key="s3cret") as c:
        assert c.get("/health").status_code == 200
        assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200
        for path, body in [("/encode", {"texts": ["hi"]}), ("/decode", {"vectors": _vec(1)}),
                           ("/predict", {"context_vectors": _vec(1)}), ("/generate", {"prompt": "Hi there."})]:
            assert c.post(path, json=body).status_code == 401
            r = c.post(path, json=body, headers={"X-API-Key": "wrong"})
            assert r.status_code == 401 and "X-API-Key" in r.json()["detail"]
            assert c.post(path, json=body, headers={"X-API-Key": "s3cret"}).status_code == 200, path


def test_without_an_encoder_text_endpoints_answer_400(parts):
    with make_client(parts, encoder=None) as c:
        assert c.post("/encode", json={"texts": ["hi"]}).status_code == 400
        r = c.post("/predict", json={"context_texts": ["hi"]})
        assert r.status_code == 400 and "send vectors" in r.json()["detail"]
        assert c.post("/predict", json={"context_vectors": _vec(1)}).status_code == 200
        assert c.get("/health").json()["encoder_loaded"] is False


def test_refuses_a_store_from_another_encoder(parts):
    store, enc, meta = parts
    other = dict(meta, fingerprint={**store.fingerprint, "name": "sentence-transformers/all-MiniLM-L6-v2"})
    with pytest.raises(FingerprintMismatch, match="name"):
        create_app(Session.assemble(Roll(), other, store, encoder=enc))
    with pytest.raises(NextvecError, match="32-d"):
        create_app(Session.assemble(Roll(), dict(meta, dim=32), store, encoder=enc))
    with pytest.raises(FingerprintMismatch):
        create_app(Session.assemble(Roll(), meta, store, encoder=HashEncoder(dim=D, name="other")))


def test_concurrent_predicts_share_model_calls_and_do_not_block_the_loop(parts):
    import httpx

    store, enc, meta = parts
    gate = threading.Event()
    model = Roll(delay=0.01, gate=gate)  # the first model call holds until /health has answered
    app = create_app(Session.assemble(model, meta, store, encoder=enc))
    ctxs = [np.roll(np.eye(D, dtype=np.float32), i, axis=1)[:2] for i in range(12)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            preds = [c.post("/predict", json={"context_vectors": x.tolist()}) for x in ctxs]
            tasks = [asyncio.ensure_future(p) for p in preds]
            while not model.batch_sizes:  # wait until the first model call is running (and held)
                await asyncio.sleep(0.005)
            health = await asyncio.wait_for(c.get("/health"), timeout=5)  # a blocked loop would time out here
            answered_while_busy = not gate.is_set()
            gate.set()
            return await asyncio.gather(*tasks), health, answered_while_busy

    results, health, answered_while_busy = asyncio.run(main())
    assert health.status_code == 200 and answered_while_busy and not model.gate_timed_out
    for x, r in zip(ctxs, results):
        np.testing.assert_allclose(r.json()["vector"], 2 * np.roll(x[-1], 1), atol=1e-6)
    assert sum(model.batch_sizes) == 12 and len(model.batch_sizes) < 12 and max(model.batch_sizes) > 1


def test_openapi_documents_the_request_bodies_and_the_key(parts):
    with make_client(parts, api_key="k", limits={"max_vectors": 8}) as c:
        spec = c.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"context_texts", "context_vectors", "output_type", "samples", "seed",
                                       "temperature", "guidance", "flow_steps"}
    decode = spec["paths"]["/decode"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "at most 8" not in json.dumps(decode) and "1 to 8 vectors of 16 finite numbers" in json.dumps(decode)
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])


def test_concurrent_decodes_share_one_search_and_keep_their_own_k(parts):
    import httpx

    from nextvec.decode.nearest import RetrievalDecoder

    store, enc, meta = parts
    inner = RetrievalDecoder(store)
    calls = []

    class Slow:
        dim = D

        def decode(self, vectors, k=1):
            calls.append((len(vectors), k))
            time.sleep(0.05)
            return inner.decode(vectors, k)

    session = Session.assemble(Roll(), meta, store, encoder=enc)
    attach_decoder(session, Slow())
    app = create_app(session)
    texts = [t for d in DOCS for t in d]

    async def main():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            reqs = [c.post("/decode", json={"vectors": enc.encode([t] * (1 + i % 2)).tolist(), "k": 1 + i % 3})
                    for i, t in enumerate(texts)]
            return await asyncio.gather(*reqs)

    results = asyncio.run(main())
    for i, (t, r) in enumerate(zip(texts, results)):
        res = r.json()["results"]
        assert len(res) == 1 + i % 2 and all(len(c) == 1 + i % 3 and c[0]["text"] == t for c in res)
    assert sum(n for n, _ in calls) == sum(1 + i % 2 for i in range(len(texts))) and len(calls) < len(texts)


def _energy_model():
    from nextvec.config import ModelConfig
    from nextvec.models.registry import build_model

    torch.manual_seed(0)
    return build_model(ModelConfig(name="gru", head="energy", hidden_dim=16, head_width=16, context_length=4), D).eval()


def test_predict_draws_seeded_samples_and_validates_their_count(parts):
    with make_client(parts, model=_energy_model(), limits={"max_samples": 8}) as c:
        ctx = {"context_texts": ["the cat sat on the mat", "it purred all night"]}
        a = c.post("/predict", json={**ctx, "samples": 3, "seed": 5}).json()
        b = c.post("/predict", json={**ctx, "samples": 3, "seed": 5}).json()
        other = c.post("/predict", json={**ctx, "samples": 3, "seed": 6}).json()
        plain = c.post("/predict", json=ctx).json()
        bad = [c.post("/predict", json={**ctx, "samples": n}) for n in (-1, 9, "x")]
        hot = c.post("/predict", json={**ctx, "samples": 2, "temperature": 11})
    assert np.asarray(a["samples"]).shape == (3, D) and a["samples"] == b["samples"] != other["samples"]
    assert "samples" not in plain and plain["vector"] == a["vector"]
    assert all(r.status_code == 422 and r.json()["detail"] for r in bad) and hot.status_code == 422


def test_generate_samples_continuations_the_same_for_the_same_seed(parts):
    with make_client(parts, model=_energy_model()) as c:
        body = {"prompt": "the cat sat on the mat. it purred all night.", "steps": 3, "stop_cos": 1.0,
                "samples": 2, "seed": 1}
        a, b = c.post("/generate", json=body).json(), c.post("/generate", json=body).json()
        too_many = c.post("/generate", json={**body, "samples": 1000})
    assert a == b and a["samples"] == 2 and len(a["rollouts"]) == 2 and a["text"] == a["rollouts"][0]["text"]
    assert too_many.status_code == 422
