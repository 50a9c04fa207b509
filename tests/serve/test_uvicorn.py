"""The app behind a real uvicorn server on a free loopback port."""

import socket
import threading
import time

import httpx
import pytest

from storekit import build_store
from fake_encoder import HashEncoder
from nextvec.serve.app import create_app
from nextvec.session import Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_serves_health(tmp_path):
    import uvicorn

    from test_serve_app import DOCS, Roll

    enc = HashEncoder(dim=16)
    store = build_store(tmp_path / "s", [enc.encode(d) for d in DOCS], texts=DOCS, fingerprint=enc.fingerprint())
    app = create_app(Session.assemble(Roll(), {"fingerprint": store.fingerprint, "dim": 16}, store, encoder=enc),
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
    app = create_app(Session.assemble(Roll(), {"fingerprint": store.fingerprint, "dim": store.dim}, store, encoder="auto"))
    with TestClient(app) as c:
        v = c.post("/encode", json={"texts": ["Investors were nervous."]}).json()["vectors"]
        assert c.post("/decode", json={"vectors": v}).json()["results"][0][0]["text"] == "Investors were nervous."
        g = c.post("/generate", json={"prompt": "The cat sat on the mat. It purred quietly.", "steps": 2}).json()
        assert g["prompt_sentences"] == ["The cat sat on the mat.", "It purred quietly."] and 1 <= g["steps_run"] <= 2


def test_serve_cli_with_two_worker_processes(tmp_path):
    """`nextvec serve --workers 2`: uvicorn's worker processes each build the app from the exported options,
    answer with the same model as in-process, keep the API key, and a wrong store is refused up front."""
    import os
    import subprocess
    import sys

    import numpy as np
    import torch

    from storekit import random_docs
    from nextvec.run.checkpoint import load_model
    from nextvec.train.loop import train

    store = build_store(tmp_path / "store", random_docs(dim=16))
    cfg = {"model": {"name": "amn", "hidden_dim": 32}, "train": {"max_steps": 2, "val_every": 2, "batch_size": 16,
                                                                 "progress": False, "threads": 1}}
    train(tmp_path / "store", cfg, tmp_path / "run")
    model, _ = load_model(tmp_path / "run")
    ctx = store.get(np.arange(3))
    with torch.inference_mode():
        want = model.predict(torch.from_numpy(ctx)[None], torch.ones(1, 3, dtype=torch.bool)).y_dec[0].numpy()

    other = build_store(tmp_path / "other", random_docs(dim=16), fingerprint={"name": "other", "dim": 16})
    bad = subprocess.run([sys.executable, "-m", "nextvec", "serve", str(tmp_path / "run"), "--store", str(other.root),
                          "--encoder", "none", "--workers", "2"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "encoder" in bad.stderr.lower() and "Traceback" not in bad.stderr

    port = free_port()
    env = {**os.environ, "NEXTVEC_API_KEY": "k"}
    server = subprocess.Popen([sys.executable, "-m", "nextvec", "serve", str(tmp_path / "run"), "--store",
                               str(store.root), "--encoder", "none", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "the workers did not come up"
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        assert httpx.post(f"{base}/predict", json={"context_vectors": ctx.tolist()}, timeout=5).status_code == 401
        for _ in range(6):  # new connections: both workers get some
            r = httpx.post(f"{base}/predict", json={"context_vectors": ctx.tolist()}, headers={"X-API-Key": "k"},
                           timeout=10)
            assert r.status_code == 200
            np.testing.assert_allclose(np.asarray(r.json()["vector"], np.float32), want, atol=1e-5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode is not None
