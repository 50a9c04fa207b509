"""The app behind a real uvicorn server on a free loopback port."""

import socket
import threading
import time

import httpx
import pytest

from storekit import build_store
from fake_encoder import HashEncoder
from nextvec.serve import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_serves_health(tmp_path):
    import uvicorn

    from test_serve_app import DOCS, Roll

    enc = HashEncoder(dim=16)
    store = build_store(tmp_path / "s", [enc.encode(d) for d in DOCS], texts=DOCS, fingerprint=enc.fingerprint())
    app = create_app(model=Roll(), meta={"fingerprint": store.fingerprint, "dim": 16}, store=store, encoder=enc,
                     api_key="k")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        h = httpx.get(f"{base}/health", timeout=5)
        assert h.status_code == 200 and h.json()["store"]["chunks"] == 6
        r = httpx.post(f"{base}/decode", json={"vectors": enc.encode(["it purred all night"]).tolist()},
                       headers={"X-API-Key": "k"}, timeout=5)
        assert r.json()["results"][0][0]["text"] == "it purred all night"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.slow
def test_real_encoder_end_to_end(tmp_path):
    from fastapi.testclient import TestClient

    from nextvec.encode import load_encoder
    from test_serve_app import Roll

    enc = load_encoder("minilm")
    docs = [["The cat sat on the mat.", "It purred quietly.", "Then it slept."],
            ["Stock markets fell sharply today.", "Investors were nervous.", "Bonds rallied."]]
    store = build_store(tmp_path / "s", [enc.encode(d) for d in docs], texts=docs, fingerprint=enc.fingerprint())
    # encoder="auto" rebuilds the store's encoder from its fingerprint (all-MiniLM-L6-v2 -> the embedded copy)
    app = create_app(model=Roll(), meta={"fingerprint": store.fingerprint, "dim": store.dim}, store=store)
    with TestClient(app) as c:
        v = c.post("/encode", json={"texts": ["Investors were nervous."]}).json()["vectors"]
        assert c.post("/decode", json={"vectors": v}).json()["results"][0][0]["text"] == "Investors were nervous."
        g = c.post("/generate", json={"prompt": "The cat sat on the mat. It purred quietly.", "steps": 2}).json()
        assert g["prompt_sentences"] == ["The cat sat on the mat.", "It purred quietly."] and 1 <= g["steps_run"] <= 2
