"""Server limits against a real uvicorn subprocess on 127.0.0.1 (as `nextvec serve` runs it): oversized bodies,
too many texts, huge vectors, slow clients, the API key on every endpoint but /health, the loopback default,
and a few seconds of concurrent load (bench/reliability.py runs 60 s at concurrency 32)."""

import inspect
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from attacks import load_trial, rss_kib, slow_clients_trial, start_server, stop_server
from hostile import DIM, make_app

KEY = "s3cret"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    p, base = start_server(tmp_path_factory.mktemp("srv"), api_key=KEY, header_timeout_s=2, body_timeout_s=2,
                           max_body_bytes=200_000)
    yield p, base
    stop_server(p)


H = {"X-API-Key": KEY}


def test_oversized_bodies_are_refused_without_growing_memory(server):
    p, base = server
    big = b'{"vectors": [' + b"[0.5" + b",0.5" * (DIM - 1) + b"]," * 1 + b"[1" * 300_000 + b"]}"
    httpx.post(base + "/decode", content=big, headers={**H, "content-type": "application/json"}, timeout=10)
    rss0 = rss_kib(p.pid)  # after a first refusal: later ones must not add memory
    for _ in range(20):
        r = httpx.post(base + "/decode", content=big, headers={**H, "content-type": "application/json"}, timeout=10)
        assert r.status_code == 413 and "limits.max_body_bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: refused while streaming
        for _ in range(100):
            yield b"[0.1, 0.2, 0.3]," * 200

    r = httpx.post(base + "/decode", content=chunks(), headers=H, timeout=10)
    assert r.status_code == 413
    assert rss_kib(p.pid) < rss0 * 1.10  # refused bodies are not kept


def test_too_many_texts_and_huge_vectors_get_a_clear_422(server):
    _, base = server
    r = httpx.post(base + "/encode", json={"texts": ["a b"] * 65}, headers=H, timeout=10)
    assert r.status_code == 422 and "texts" in r.json()["detail"] and "64" in r.json()["detail"]
    r = httpx.post(base + "/decode", json={"vectors": [[0.1] * DIM] * 257}, headers=H, timeout=10)
    assert r.status_code == 422 and "256" in r.json()["detail"]
    r = httpx.post(base + "/decode", json={"vectors": [[0.1] * 20_000]}, headers=H, timeout=10)
    assert r.status_code == 422 and f"{DIM}-d" in r.json()["detail"]
    r = httpx.post(base + "/predict", json={"context_vectors": [[1e39] * DIM]}, headers=H, timeout=10)
    assert r.status_code == 422 and "too large for float32" in r.json()["detail"]
    r = httpx.post(base + "/encode", json={"texts": ["x" * 2001]}, headers=H, timeout=10)
    assert r.status_code == 422 and "2000" in r.json()["detail"]


def test_slow_clients_time_out_and_do_not_hang_the_others(server):
    p, base = server
    r = slow_clients_trial(p, base, n_slow=30, timeout_s=2, api_key=KEY)
    assert r["others_ok"] == 5 and r["others_seconds"] < 5, r
    assert r["closed"] == 30 and r["answered_408"] == 10, r
    assert httpx.get(base + "/health", timeout=5).status_code == 200
    # without the key, a stalled body is refused at once (401, before its body is read) and closed
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        t0 = time.monotonic()
        s.sendall(b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        data = b""
        while part := s.recv(4096):
            data += part
        assert data.startswith(b"HTTP/1.1 401") and time.monotonic() - t0 < 1.5


def test_short_load_has_no_errors(server):
    p, base = server
    r = load_trial(p, base, seconds=3, concurrency=8, api_key=KEY)
    assert r["errors"] == 0 and r["requests"] > 20, r
    assert r["rss_growth"] < 0.10, r


def test_api_key_guards_every_endpoint_but_health(tmp_path):
    app = make_app(api_key=KEY, root=tmp_path)
    open_paths = {"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
    routes = [(m, r.path) for r in app.routes for m in getattr(r, "methods", []) if r.path not in open_paths]
    assert {path for _, path in routes} >= {"/encode", "/predict", "/decode", "/generate"}
    body = {"/encode": {"texts": ["a"]}, "/predict": {"context_vectors": [[0.1] * DIM]},
            "/decode": {"vectors": [[0.1] * DIM]}, "/generate": {"prompt": "the cat sat."}}
    with TestClient(app) as c:
        for method, path in routes:
            for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"x-api-key": KEY + " "}):
                r = c.request(method, path, json=body.get(path), headers=headers)
                assert r.status_code == 401 and "API key" in r.json()["detail"], (method, path, headers, r.text)
            assert c.request(method, path, json=body.get(path), headers=H).status_code == 200, path
        assert c.get("/health").status_code == 200


def test_serve_binds_loopback_unless_told():
    from nextvec.cli.serve import serve_cmd

    host = inspect.signature(serve_cmd).parameters["host"].default
    assert host.default == "127.0.0.1"
    from nextvec.serve.app import ServeLimits

    assert ServeLimits().header_timeout_s > 0 and ServeLimits().body_timeout_s > 0


