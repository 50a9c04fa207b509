"""Serving speed: the real uvicorn server on loopback, driven at concurrency 1 and 8.

    python bench/serve.py                       # synthetic 384-d store + a model of the default recipe (AMN)
    python bench/serve.py --run RUN --store STORE --requests 1000

Prints p50/p99 latency (each cell run --repeat times, latencies pooled), requests/s and errors for
/predict and /decode, for a server of 1 and of 2 worker processes, beside the same calls made in-process
(model.predict / decoder.decode on one request's input) and their ratio (HTTP overhead). Target:
/predict p99 < 20 ms at concurrency 8 on a 2-core machine, 0 errors. The client (a minimal keep-alive
HTTP/1.1 client on uvloop, one connection per concurrent worker) runs on the same cores as the server,
so the numbers include its cost too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_synthetic(root: Path, n_docs: int, dim: int, model: str) -> tuple[Path, Path]:
    """A store of random unit vectors (documents of 8-16 chunks) and a default-size model trained 2 steps."""
    from nextvec.store import StoreWriter
    from nextvec.train.loop import train

    rng = np.random.default_rng(0)
    fp = {"name": "bench-random", "dim": dim, "pooling": "none", "normalized": True, "version": "0"}
    w = StoreWriter(root / "store", fp, params={"source": "bench"})
    for s in range(0, n_docs, 200):
        docs, vecs = [], []
        for d in range(s, min(s + 200, n_docs)):
            n = int(rng.integers(8, 17))
            v = rng.normal(size=(n, dim)).astype(np.float32)
            vecs.append(v / np.linalg.norm(v, axis=1, keepdims=True))
            docs.append((f"doc{d}", [f"document {d} sentence {p}" for p in range(n)]))
        w.add_shard(docs, np.concatenate(vecs), source_end=min(s + 200, n_docs))
    w.finalize((0.8, 0.1, 0.1), 0)
    cfg = {"model": {"name": model}, "train": {"max_steps": 2, "val_every": 2, "warmup_steps": 1, "batch_size": 64,
                                               "val_max_windows": 256, "progress": False, "device": "cpu", "threads": 1}}
    train(root / "store", cfg, root / "run")
    return root / "run", root / "store"


def pct(xs, q):
    return float(np.percentile(np.asarray(xs) * 1000, q)) if xs else float("nan")


class RawHTTP:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (one connection, one request at a time).

    httpx spends ~2.5 ms of CPU per request, more than the server itself, and the client shares the
    server's 2 cores; this one spends ~0.2 ms, so the numbers measure the server.
    """

    def __init__(self, host: str, port: int, headers: dict):
        self.host, self.port = host, port
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"host": f"{host}:{port}", **headers}.items())
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\n{self.head}content-length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        data = await self.reader.readexactly(int(fields.get("content-length", 0)))
        if fields.get("connection", "").lower() == "close":
            await self.close()
        return status, data

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def drive(base: str, path: str, bodies: list[bytes], concurrency: int, headers: dict, client: str = "raw"):
    """Send every body once with `concurrency` workers (one connection each);
    -> latencies (s), wall (s), errors, parsed responses."""
    import httpx

    lat, errors, responses = [], 0, [None] * len(bodies)
    nxt = 0
    host, port = base.removeprefix("http://").rsplit(":", 1)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as hc:
        async def worker():
            nonlocal nxt, errors
            raw = RawHTTP(host, int(port), headers) if client == "raw" else None
            while nxt < len(bodies):
                i = nxt
                nxt += 1
                t = time.perf_counter()
                try:
                    if raw is not None:
                        status, data = await asyncio.wait_for(raw.post(path, bodies[i]), 30)
                    else:
                        r = await hc.post(path, content=bodies[i])
                        status, data = r.status_code, r.content
                    ok = status == 200
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, httpx.HTTPError):
                    ok, data = False, b""
                    if raw is not None:
                        await raw.close()
                lat.append(time.perf_counter() - t)
                responses[i] = data if ok else None  # parsed after the clock stops
                errors += not ok
            if raw is not None:
                await raw.close()

        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        wall = time.perf_counter() - t0
    return lat, wall, errors, [None if r is None else json.loads(r) for r in responses]


def run_loop(coro):
    """asyncio.run on uvloop when it is installed (the client's own CPU cost is then ~half)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def wait_up(server, base: str, workers: int) -> None:
    """Until /health answers (every worker, for several) or the server exits."""
    import httpx

    t0 = time.perf_counter()
    seen = 0
    while seen < 3 * workers:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read()[-2000:]}")
        try:
            seen += httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            time.sleep(0.2)
        if time.perf_counter() - t0 > 180:
            raise SystemExit("server did not come up in 180 s")
    print(f"server with {workers} worker(s) up on {base} in {time.perf_counter() - t0:.1f} s")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and all its descendants (uvicorn's worker processes)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total = 0.0
    for p in tree:
        try:
            total += cpu_seconds(p)
        except (OSError, ValueError, IndexError):
            pass
    return total


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default), from /proc or getrusage."""
    if pid is None:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_process(fn, inputs) -> list[float]:
    out = []
    for x in inputs:
        t = time.perf_counter()
        fn(x)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path)
    ap.add_argument("--store", type=Path)
    ap.add_argument("--model", default="amn", help="synthetic setup: amn (the default recipe) | gru | lstm | transformer")
    ap.add_argument("--docs", type=int, default=2000, help="synthetic setup: documents (~24k chunks for 2000)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--requests", type=int, default=400, help="requests per (endpoint, concurrency)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--workdir", type=Path, help="synthetic setup: build it here once and reuse it on later runs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads, server and in-process alike")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each cell; p50/p99 are over all of them pooled")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="server processes (`nextvec serve --workers`); each count gets its own server and rows")
    ap.add_argument("--memory", action=argparse.BooleanOptionalAction, default=False,
                    help="serve (and predict in-process) with the run's successor memory when it has memory.json")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="load generator: raw (asyncio streams, ~0.2 ms CPU/request) or httpx (~2.5 ms)")
    args = ap.parse_args()

    import torch

    from nextvec.data.windows import gather_windows, window_targets
    from nextvec.decode.nearest import RetrievalDecoder
    from nextvec.session import Session

    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    if args.run is None or args.store is None:
        t = time.perf_counter()
        root = args.workdir or Path(tmp.name)
        if (root / "run" / "checkpoints").is_dir() and (root / "store" / "manifest.json").is_file():
            args.run, args.store = root / "run", root / "store"
        else:
            args.run, args.store = make_synthetic(root, args.docs, args.dim, args.model)
        print(f"synthetic setup: {args.docs} docs, {args.dim}-d, default {args.model}, "
              f"ready in {time.perf_counter() - t:.1f} s")
    # what the server will run: with --memory, the model with its fitted memory, if the run has one
    session = Session.open(args.run, args.store, encoder=None, memory=args.memory)
    store, model, T = session.store, session.predictor, int(session.context_length)
    targets = window_targets(store, "test")[: args.requests]
    targets = np.resize(targets, args.requests)
    ctx, mask, _ = gather_windows(store, targets, T)
    contexts = [c[m] for c, m in zip(ctx, mask)]  # each request sends only its real vectors
    queries = store.get(targets)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {model.name} ({n_params / 1e6:.2f}M params, context {T}), store {len(store)} chunks x {store.dim}-d, "
          f"{args.requests} requests per cell, k={args.k}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} (other processes share these cores)")

    predict_bodies = [json.dumps({"context_vectors": c.tolist()}).encode() for c in contexts]
    decode_bodies = [json.dumps({"vectors": [q.tolist()], "k": args.k}).encode() for q in queries]
    key = "bench-key"
    headers = {"X-API-Key": key, "content-type": "application/json"}

    # the same work in-process, one request's input at a time
    dec = RetrievalDecoder(store)

    def predict_one(c):
        with torch.inference_mode():
            return model.predict(torch.from_numpy(c)[None], torch.ones(1, len(c), dtype=torch.bool)).y_dec[0].numpy()

    local_pred = [predict_one(c) for c in contexts[:20]]  # warm-up
    local = {"/predict": in_process(predict_one, contexts),
             "/decode": in_process(lambda q: dec.decode(q[None], k=args.k), queries)}

    rows, healths = [], {}
    for workers in args.workers:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "nextvec", "serve", str(args.run), "--store", str(args.store), "--port", str(port),
             "--encoder", "none", "--api-key", key, "--log-level", "warning", "--threads", str(args.threads),
             "--workers", str(workers), "--memory" if args.memory else "--no-memory"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_up(server, base, workers)
            for path, bodies in (("/predict", predict_bodies), ("/decode", decode_bodies)):
                run_loop(drive(base, path, bodies[:40], 8, headers, args.client))  # warm-up, every worker
                for conc in (1, 8):
                    cpu0 = tree_cpu_seconds(server.pid), cpu_seconds()
                    lat, wall, errors, p99s = [], 0.0, 0, []
                    for _ in range(args.repeat):  # latencies pooled over the repeats; each repeat's p99 kept too
                        l, w, e, resp = run_loop(drive(base, path, bodies, conc, headers, args.client))
                        lat += l
                        wall += w
                        errors += e
                        p99s.append(pct(l, 99))
                    n = len(bodies) * args.repeat
                    cpu = [(b - a) * 1000 / n for a, b in zip(cpu0, (tree_cpu_seconds(server.pid), cpu_seconds()))]
                    diff = None
                    if path == "/predict":
                        diff = max(float(np.abs(np.asarray(r["vector"]) - predict_one(c)).max())
                                   for r, c in zip(resp[:50], contexts[:50]) if r is not None)
                    rows.append((workers, path, conc, pct(lat, 50), pct(lat, 99), n / wall, errors, cpu, diff, p99s))
            import httpx

            healths[workers] = httpx.get(f"{base}/health", timeout=5).json()
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()

    print()
    print(f"{'workers':>7} {'endpoint':9} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'p99 of each run':>17} {'req/s':>8} {'errors':>6} | "
          f"{'in-proc p50':>11} {'in-proc p99':>11} {'p50 ratio':>9} | CPU ms/req server client | "
          f"max|diff| vs in-process")
    for workers, path, conc, p50, p99, rps, err, cpu, diff, p99s in rows:
        lp50, lp99 = pct(local[path], 50), pct(local[path], 99)
        d = "" if diff is None else f"{diff:.1e}"
        each = " ".join(f"{x:.1f}" for x in p99s)
        print(f"{workers:>7} {path:9} {conc:>4} {p50:8.2f} {p99:8.2f} {each:>17} {rps:8.1f} {err:>6} | "
              f"{lp50:11.2f} {lp99:11.2f} {p50 / lp50:8.1f}x | {cpu[0]:17.2f} {cpu[1]:6.2f} | {d}")
    for workers, health in healths.items():
        for name, b in health["batches"].items():
            print(f"micro-batching /{name} ({'the' if workers == 1 else 'one of'} {workers} worker(s) answering /health): "
                  f"{b['requests']} requests in {b['calls']} calls ({b['requests'] / max(1, b['calls']):.2f} per call)")
    print("CPU ms/req: CPU time the server processes and this client spent per request (2 cores = 2000 ms/s in all)")
    print(f"load average now {os.getloadavg()[0]:.1f}")
    for workers in args.workers:
        p99_c8 = next(r[4] for r in rows if r[:3] == (workers, "/predict", 8))
        errs = sum(r[6] for r in rows if r[0] == workers)
        print(f"--workers {workers}: target /predict p99 < 20 ms at concurrency 8 ({args.repeat} x {args.requests} "
              f"requests pooled): {p99_c8:.2f} ms -> "
              f"{'MET' if p99_c8 < 20 else 'MISSED'}; errors: {errs} -> {'MET' if errs == 0 else 'MISSED'}")
    del local_pred
    tmp.cleanup()


if __name__ == "__main__":
    main()
