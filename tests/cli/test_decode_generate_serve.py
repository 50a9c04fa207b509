"""`nextvec decode`, `nextvec generate`, `nextvec serve` on a real tiny trained run (word-hash encoder).

The store is made with nextvec's own hashing encoder, so every command rebuilds it by name from the store's
fingerprint (`hash:16`) exactly as it would a real one: nothing is patched into the modules that load it.
"""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from storekit import build_store
from nextvec.cli import app
from nextvec.encode.hashing import HashingEncoder
from nextvec.errors import FingerprintMismatch, NextvecError

runner = CliRunner()
D = 16
DOCS = [[f"Topic {d} sentence {p} about thing{d}x{p} and item{p}y{d}" for p in range(8)] for d in range(12)]  # 96 distinct vectors


@pytest.fixture(scope="module")
def run_and_store(tmp_path_factory):
    from nextvec.train.loop import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli")
    enc = HashingEncoder(D)
    build_store(root / "store", [enc.encode(d) for d in DOCS], texts=DOCS, fingerprint=enc.fingerprint())
    cfg = {"model": {"name": "gru", "context_length": 3, "hidden_dim": 16, "num_layers": 1},
           "train": {"batch_size": 16, "max_steps": 4, "val_every": 4, "warmup_steps": 1, "progress": False,
                     "device": "cpu", "threads": 1}}
    train(root / "store", cfg, root / "run")
    return root / "run", root / "store"


@pytest.fixture
def encoder_calls(monkeypatch):
    """The texts the store's encoder is asked to encode (recorded on the class, wherever it is loaded)."""
    calls, encode = [], HashingEncoder.encode

    def recording(self, texts, *args, **kwargs):
        calls.append(list(texts))
        return encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(HashingEncoder, "encode", recording)
    return calls


def test_decode_chunks_and_vectors(run_and_store, tmp_path):
    _, store = run_and_store
    r = runner.invoke(app, ["decode", "--store", str(store), "--chunk", "3", "--chunk", "17", "--k", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    rows = out["results"]
    assert out["decoder"] == "retrieval"
    assert [row["candidates"][0]["text"] for row in rows] == [row["source"] for row in rows]
    assert rows[0]["source"] == DOCS[0][3] and rows[0]["candidates"][0]["score"] == pytest.approx(1.0, abs=1e-5)
    np.save(tmp_path / "v.npy", np.zeros((1, D + 1), np.float32))
    r = runner.invoke(app, ["decode", "--store", str(store), "--vectors", str(tmp_path / "v.npy")])
    assert isinstance(r.exception, NextvecError) and "(N, 16)" in str(r.exception)


def test_decode_text_round_trip(run_and_store):
    _, store = run_and_store
    r = runner.invoke(app, ["decode", "--store", str(store), "--text", DOCS[2][5], "--round-trip"])
    assert r.exit_code == 0, r.output
    assert f"1.000  {DOCS[2][5]}" in r.output and "(round trip 1.000)" in r.output


def test_decode_refuses_vec2text_on_other_stores(run_and_store):
    _, store = run_and_store
    r = runner.invoke(app, ["decode", "--store", str(store), "--chunk", "0", "--decoder", "vec2text"])
    assert isinstance(r.exception, NextvecError) and "GTR vec2text encoder" in str(r.exception)


def test_generate_prints_steps_and_json(run_and_store):
    run, store = run_and_store
    prompt = f"{DOCS[1][0]}. {DOCS[1][1]}."
    r = runner.invoke(app, ["generate", str(run), "--store", str(store), "--prompt", prompt, "--steps", "3", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["prompt_sentences"] == [DOCS[1][0] + ".", DOCS[1][1] + "."]
    assert 1 <= out["steps_run"] <= 3 and all(s["text"] in sum(DOCS, []) for s in out["steps"])
    r = runner.invoke(app, ["generate", str(run), "--store", str(store), "--prompt", prompt, "--steps", "2"])
    assert r.exit_code == 0 and "[1] score" in r.output and "stopped:" in r.output


def test_generate_refuses_a_store_from_another_encoder(run_and_store, tmp_path):
    run, _ = run_and_store
    other = build_store(tmp_path / "other", [np.eye(D, dtype=np.float32)[:4]], fractions=(1.0, 0.0, 0.0),
                        fingerprint={"name": "other-encoder", "dim": D, "pooling": "mean", "normalized": True})
    r = runner.invoke(app, ["generate", str(run), "--store", str(other.root), "--prompt", "Hi there."])
    assert isinstance(r.exception, FingerprintMismatch)


def test_serve_binds_loopback_and_serves_the_trained_model(run_and_store, monkeypatch):
    import uvicorn
    from fastapi.testclient import TestClient

    from nextvec.run.checkpoint import load_model

    run, store = run_and_store
    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level, **kw: seen.update(app=app, host=host, port=port, **kw))
    r = runner.invoke(app, ["serve", str(run), "--store", str(store), "--limit", "max_k=7"])
    assert r.exit_code == 0, r.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    model, meta = load_model(run)
    ctx = HashingEncoder(D).encode(DOCS[0][:3])
    with torch.no_grad():
        want = model.predict(torch.from_numpy(ctx)[None], torch.ones(1, 3, dtype=torch.bool)).y_dec[0].numpy()
    with TestClient(seen["app"]) as c:
        h = c.get("/health").json()
        assert h["model"] == "gru" and h["context_length"] == 3 and h["limits"]["max_k"] == 7
        got = c.post("/predict", json={"context_vectors": ctx.tolist()}).json()["vector"]
        np.testing.assert_allclose(got, want, atol=1e-5)  # the SAME model as training, from its checkpoint
        assert c.post("/decode", json={"vectors": [got], "k": 8}).status_code == 422


def test_serve_refuses_a_store_from_another_encoder_and_bad_limits(run_and_store, tmp_path, monkeypatch):
    import uvicorn

    run, _ = run_and_store
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    other = build_store(tmp_path / "other", [np.eye(D, dtype=np.float32)[:4]], fractions=(1.0, 0.0, 0.0),
                        fingerprint={"name": "other-encoder", "dim": D, "pooling": "mean", "normalized": True})
    r = runner.invoke(app, ["serve", str(run), "--store", str(other.root)])
    assert isinstance(r.exception, FingerprintMismatch) and "other-encoder" in str(r.exception)
    r = runner.invoke(app, ["serve", str(run), "--store", str(other.root), "--limit", "max_nope=3"])
    assert isinstance(r.exception, NextvecError) and "max_vectors" in str(r.exception)


@pytest.mark.parametrize("prompt", ["", "   ", " \n\t "])
def test_generate_refuses_an_empty_prompt(run_and_store, encoder_calls, prompt):
    run, store = run_and_store
    r = runner.invoke(app, ["generate", str(run), "--store", str(store), "--prompt", prompt])
    assert r.exit_code != 0 and isinstance(r.exception, NextvecError), r.output
    assert "--prompt is empty" in str(r.exception)
    assert encoder_calls == []  # refused before anything was encoded
