"""Attacks shared by tests/reliability (small counts) and bench/reliability.py (full counts).

Crash trials run the real CLI in subprocesses (`python -m nextvec ...`) with the dependency-free
`hash:64` encoder and kill them with SIGKILL at random moments; every comparison is against an
uninterrupted run of the same command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega river stone cloud paper window garden music engine").split()


def make_corpus(path: Path, n_docs: int = 400, seed: int = 0) -> Path:
    """A JSONL of `n_docs` generated documents of 2-8 sentences (plus a few records ingest must skip)."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for d in range(n_docs):
            sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))).capitalize() + "."
                     for _ in range(rng.randint(2, 8))]
            f.write(json.dumps({"id": f"d{d}", "text": " ".join(sents)}) + "\n")
            if d % 97 == 13:
                f.write('{"id": "broken", "text": \n')  # malformed: skipped with a warning, counted in source order
    return path


def nextvec(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nextvec", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


def ingest_args(corpus: Path, out: Path, shard_chunks: int = 40) -> list[str]:
    return ["ingest", str(corpus), "--out", str(out), "--encoder", "hash:64", "--shard-chunks", str(shard_chunks),
            "--max-chars", "120"]


def run_and_kill(args: list[str], started, delay: float, timeout: float = 300) -> bool:
    """Start `nextvec args`; once `started()` is true wait `delay` s and SIGKILL. True if it was killed."""
    p = subprocess.Popen([sys.executable, "-m", "nextvec", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
    try:
        deadline = time.monotonic() + timeout
        while not started() and p.poll() is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nextvec {args[0]} did not start within {timeout} s")
            time.sleep(0.002)
        end = time.monotonic() + delay
        while p.poll() is None and time.monotonic() < end:
            time.sleep(0.001)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return True
        return False
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def timed_run(args: list[str], started, timeout: float = 300) -> float:
    """Seconds from `started()` to exit of an uninterrupted run (the window random kills are drawn from)."""
    p = subprocess.Popen([sys.executable, "-m", "nextvec", *args], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    t0 = None
    deadline = time.monotonic() + timeout
    while p.poll() is None:
        if t0 is None and started():
            t0 = time.monotonic()
        if time.monotonic() > deadline:
            p.kill()
            raise TimeoutError(f"nextvec {args[0]} ran over {timeout} s")
        time.sleep(0.002)
    err = p.stderr.read().decode()
    if p.returncode != 0:
        raise RuntimeError(f"nextvec {' '.join(args)} failed: {err[-2000:]}")
    return time.monotonic() - (t0 if t0 is not None else time.monotonic())


# ---- stores ---------------------------------------------------------------------------------------

def store_differences(a_path: Path, b_path: Path) -> list[str]:
    """What differs between two finished stores: chunks (texts, documents, positions), vectors, splits, stats."""
    from nextvec.store import ConceptStore

    a, b = ConceptStore(a_path), ConceptStore(b_path)
    diffs = []
    if len(a) != len(b) or a.n_docs != b.n_docs:
        return [f"sizes: {len(a)} chunks/{a.n_docs} docs vs {len(b)}/{b.n_docs}"]
    for name in ("chunk_doc", "chunk_pos", "doc_offsets", "doc_split", "_text_offsets", "mean", "std"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            diffs.append(name)
    if not np.array_equal(np.asarray(a.vectors), np.asarray(b.vectors)):
        diffs.append("vectors")
    if a._texts != b._texts:
        diffs.append("texts")
    if a.doc_ids != b.doc_ids:
        diffs.append("doc_ids")
    if a.fingerprint != b.fingerprint:
        diffs.append("fingerprint")
    return diffs


def store_state(path: Path) -> str:
    """'complete', or the clear refusal a reader gives for a half-written store ('refused: ...').

    Anything else (another exception type) propagates: that would be a bug.
    """
    from nextvec.errors import NextvecError
    from nextvec.store import ConceptStore

    try:
        ConceptStore(path)
    except NextvecError as e:
        return f"refused: {e}"
    return "complete"


def info_is_clear(path: Path) -> tuple[bool, str]:
    """`nextvec info` in a subprocess: exit 0, or exit 2 with an `error:` line; never a traceback."""
    r = nextvec("info", path)
    ok = (r.returncode == 0 or (r.returncode == 2 and r.stderr.startswith("error:"))) and "Traceback" not in r.stderr
    return ok, (r.stdout.splitlines()[0] if r.returncode == 0 else r.stderr.strip())


def crash_ingest_trial(corpus: Path, ref: Path, out: Path, window: float, rng: random.Random,
                       check_info_cli: bool = False) -> dict:
    """Kill one ingest at a random moment, check what readers see, rerun to completion, compare with `ref`."""
    args = ingest_args(corpus, out)
    delay = rng.uniform(0, window)
    killed = run_and_kill(args, lambda: out.exists(), delay)
    state = store_state(out) if out.exists() else "refused: no folder yet"
    info_ok = True
    if check_info_cli and out.exists():
        info_ok, _ = info_is_clear(out)
    if state.startswith("refused") and "incomplete" not in state and "not a concept store" not in state:
        return {"killed": killed, "delay": delay, "state": state, "info_ok": info_ok, "diffs": ["unexpected refusal"]}
    r = nextvec(*args)
    if r.returncode != 0:
        return {"killed": killed, "delay": delay, "state": state, "info_ok": info_ok,
                "diffs": [f"rerun failed: {r.stderr[-500:]}"]}
    return {"killed": killed, "delay": delay, "state": state.split(":")[0], "info_ok": info_ok,
            "diffs": store_differences(ref, out), "resumed": "resuming" in r.stderr}


# ---- training ---------------------------------------------------------------------------------------

TRAIN_SETS = ["train.max_steps=200", "train.checkpoint_every=4", "train.val_every=40", "train.threads=1",
              "train.batch_size=16", "train.progress=false"]


def train_args(store: Path, run: Path, resume: bool = False) -> list[str]:
    args = ["train", str(store), "--out", str(run), "--config", str(ROOT / "configs" / "tiny.toml")]
    for s in TRAIN_SETS:
        args += ["--set", s]
    return args + (["--resume"] if resume else [])


def read_metrics(run: Path) -> dict[int, dict]:
    """Per-step training records (val records are kept under key -step)."""
    out = {}
    for line in (run / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[-rec["step"] if any(k.startswith("val/") for k in rec) else rec["step"]] = rec
    return out


def checkpoint_step(run: Path) -> int | None:
    from nextvec.run.checkpoint import read_checkpoint

    last = run / "checkpoints" / "last.safetensors"
    return read_checkpoint(last)[1]["step"] if last.is_file() else None


def crash_train_trial(store: Path, ref_run: Path, run: Path, window: float, rng: random.Random,
                      next_steps: int = 50) -> dict:
    """Kill `nextvec train` at a random moment, `--resume` it, compare the next steps' records with `ref_run`."""
    delay = rng.uniform(0, window / 2)  # the first half of the run: >= 50 of its 200 steps follow any kill
    killed = run_and_kill(train_args(store, run), lambda: (run / "metrics.jsonl").exists(), delay)
    step = checkpoint_step(run)
    if step is None:  # killed before the first checkpoint: nothing to resume, start again
        r = nextvec(*train_args(store, run))
    else:
        r = nextvec(*train_args(store, run, resume=True))
    if r.returncode != 0:
        return {"killed": killed, "delay": delay, "resumed_from": step, "compared": 0,
                "mismatch": [f"rerun failed: {r.stderr[-800:]}"]}
    ref, got = read_metrics(ref_run), read_metrics(run)
    start = step or 0
    steps = [s for s in range(start + 1, start + next_steps + 1) if s in ref]
    mismatch = [s for s in steps if got.get(s) != ref[s]]
    if sorted(got) != sorted(ref):
        mismatch.append("record steps differ")
    return {"killed": killed, "delay": delay, "resumed_from": step, "compared": len(steps), "mismatch": mismatch,
            "final_equal": got == ref}


# ---- full disk, read-only folder ------------------------------------------------------------------------

def ingest_inprocess(corpus: Path, out: Path, shard_chunks: int = 40) -> dict:
    from nextvec.encode.hashing import HashingEncoder
    from nextvec.ingest import IngestOptions, ingest

    return ingest(str(corpus), out, IngestOptions(max_chars=120, shard_chunks=shard_chunks, progress=False),
                  encoder=HashingEncoder(64), log=lambda msg: None)


WRITE_POINTS = ("atomic_write_bytes", "_write_at", "_finish_file")  # every way the store writer writes


def _patched_writes(wrap):
    """Replace the store writer's write functions by `wrap(name, real)`; returns a function that restores them."""
    import nextvec.store.writer as w

    real = {name: getattr(w, name) for name in WRITE_POINTS}
    for name, fn in real.items():
        setattr(w, name, wrap(name, fn))
    return lambda: [setattr(w, name, fn) for name, fn in real.items()]


def count_writes(corpus: Path, out: Path) -> int:
    """How many writes an uninterrupted in-process ingest makes (the moments a disk can fill up)."""
    n = [0]

    def wrap(name, real):
        def counting(*args):
            n[0] += 1
            return real(*args)
        return counting

    restore = _patched_writes(wrap)
    try:
        ingest_inprocess(corpus, out)
    finally:
        restore()
    return n[0]


def _half_written(name: str, real, args) -> None:
    """What a full disk leaves behind at a failing write: half a temporary file, or half the appended bytes."""
    if name == "atomic_write_bytes":
        path, data = args
        data = data if isinstance(data, (bytes, bytearray)) else b"".join(bytes(part) for part in data)
        Path(str(path) + ".tmp").write_bytes(data[: len(data) // 2])
    elif name == "_write_at":
        path, offset, data = args
        real(path, offset, memoryview(data)[: len(memoryview(data)) // 2])


def failing_disk_trial(corpus: Path, ref: Path, out: Path, fail_at: int, err: int) -> dict:
    """The `fail_at`-th write raises OSError(err) (ENOSPC: disk full; EROFS: read-only): a clear error, a
    store that still opens or is clearly refused as incomplete, and a rerun (with space) equal to `ref`."""
    import errno as errno_mod

    from nextvec.errors import NextvecError

    n = [0]

    def wrap(name, real):
        def failing(*args):
            n[0] += 1
            if n[0] == fail_at:
                _half_written(name, real, args)
                raise OSError(err, os.strerror(err))
            return real(*args)
        return failing

    restore = _patched_writes(wrap)
    try:
        ingest_inprocess(corpus, out)
        error = None
    except NextvecError as e:
        error = str(e)
    finally:
        restore()
    clear = error is not None and os.strerror(err) in error
    state = store_state(out)
    rerun_diffs = None
    if error is not None:
        ingest_inprocess(corpus, out)
        rerun_diffs = store_differences(ref, out)
    return {"fail_at": fail_at, "errno": errno_mod.errorcode[err], "error": error, "clear": clear,
            "state": state.split(":")[0], "state_msg": state, "rerun_diffs": rerun_diffs}


def mount(kind: str, target: Path, source: Path | None = None, size_k: int = 0) -> bool:
    """Mount a tmpfs of `size_k` KiB or a read-only bind of `source` on `target`; False if not permitted."""
    target.mkdir(parents=True, exist_ok=True)
    if kind == "tmpfs":
        cmds = [["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", str(target)]]
    else:
        cmds = [["mount", "--bind", str(source), str(target)], ["mount", "-o", "remount,bind,ro", str(target)]]
    for i, cmd in enumerate(cmds):
        try:
            r = subprocess.run(cmd, capture_output=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if r.returncode != 0:
            if i:
                umount(target)
            return False
    return True


def umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, timeout=20)


def real_full_disk_trial(corpus: Path, ref: Path, mnt: Path, size_k: int) -> dict | None:
    """Ingest (CLI subprocess) into a tmpfs too small for the store; then grow it and rerun. None if mounting
    is not permitted here."""
    if not mount("tmpfs", mnt, size_k=size_k):
        return None
    try:
        out = mnt / "store"
        r = nextvec(*ingest_args(corpus, out))
        clear = r.returncode == 2 and "No space left on device" in r.stderr and "Traceback" not in r.stderr
        info_ok, info_msg = info_is_clear(out)
        subprocess.run(["mount", "-o", f"remount,size={size_k * 4}k", str(mnt)], check=True, capture_output=True)
        r2 = nextvec(*ingest_args(corpus, out))
        diffs = store_differences(ref, out) if r2.returncode == 0 else [f"rerun failed: {r2.stderr[-300:]}"]
        return {"rc": r.returncode, "clear": clear, "message": next((ln for ln in r.stderr.splitlines() if ln.startswith("error:")), r.stderr[-200:]),
                "info_ok": info_ok, "info": info_msg, "rerun_diffs": diffs}
    finally:
        umount(mnt)


def read_only_trial(corpus: Path, ref: Path, scratch: Path) -> dict | None:
    """A read-only folder: ingest into it fails clearly; a finished store on it opens and `info` works."""
    import shutil

    src = scratch / "ro_src"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ref, src / "store", dirs_exist_ok=True)
    mnt = scratch / "ro"
    if not mount("bind-ro", mnt, source=src):
        return None
    try:
        r = nextvec(*ingest_args(corpus, mnt / "new"))
        clear = r.returncode == 2 and "Read-only file system" in r.stderr and "Traceback" not in r.stderr
        info_ok, info_msg = info_is_clear(mnt / "store")
        diffs = store_differences(ref, mnt / "store")
        return {"ingest_rc": r.returncode, "clear": clear, "message": r.stderr.strip().splitlines()[-1],
                "info_ok": info_ok and info_msg.startswith("store"), "diffs": diffs}
    finally:
        umount(mnt)


# ---- a real server in a subprocess ---------------------------------------------------------------------------

SERVER = """
import sys, uvicorn, torch
torch.set_num_threads(1)
sys.path.insert(0, {here!r})
from hostile import make_app
from nextvec.serve.app import ServeLimits
from nextvec.serve.timeouts import protocol_with_header_timeout
limits = ServeLimits(**{limits!r})
app = make_app(api_key={key!r}, root={root!r}, limits=limits)
# as `nextvec serve` runs it
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning",
            http=protocol_with_header_timeout(limits.header_timeout_s))
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, api_key: str | None = None, **limits):
    """uvicorn over hostile.make_app in a subprocess on 127.0.0.1 -> (process, base url)."""
    import httpx

    port = free_port()
    code = SERVER.format(here=str(Path(__file__).parent), key=api_key, root=str(root), port=port, limits=limits)
    p = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if p.poll() is not None:
            raise RuntimeError(f"server died: {p.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                return p, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            p.kill()
            raise TimeoutError("server did not start")
        time.sleep(0.1)


def stop_server(p) -> None:
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def load_trial(proc, base: str, seconds: float, concurrency: int, api_key: str | None = None) -> dict:
    """`concurrency` clients alternating /predict and /decode for `seconds` on loopback: errors, p50/p99 ms,
    requests/s and the server's RSS growth (after a warm-up of the same traffic)."""
    import asyncio

    import httpx

    dim = 16
    rng = np.random.default_rng(0)
    headers = {"X-API-Key": api_key} if api_key else {}
    bodies = [("/predict", {"context_vectors": rng.normal(size=(3, dim)).tolist()}),
              ("/decode", {"vectors": rng.normal(size=(2, dim)).tolist(), "k": 3})]

    async def worker(client, until, lat, errors, i):
        n = i
        while time.monotonic() < until:
            path, body = bodies[n % 2]
            n += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(base + path, json=body, headers=headers)
                if r.status_code != 200:
                    errors.append(f"{path}: {r.status_code} {r.text[:100]}")
            except httpx.HTTPError as e:
                errors.append(f"{path}: {type(e).__name__}")
            lat.append(time.perf_counter() - t0)

    async def run(duration):
        lat, errors = [], []
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            until = time.monotonic() + duration
            await asyncio.gather(*(worker(client, until, lat, errors, i) for i in range(concurrency)))
        return lat, errors

    asyncio.run(run(min(5.0, seconds / 4)))  # warm-up: allocator pools, FAISS, thread stacks
    rss0 = rss_kib(proc.pid)
    t0 = time.monotonic()
    lat, errors = asyncio.run(run(seconds))
    elapsed = time.monotonic() - t0
    rss1 = rss_kib(proc.pid)
    ms = np.array(lat) * 1000
    return {"requests": len(lat), "errors": len(errors), "first_errors": errors[:3],
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "rps": len(lat) / elapsed, "rss_start_mib": rss0 / 1024, "rss_end_mib": rss1 / 1024,
            "rss_growth": (rss1 - rss0) / rss0}


def slow_clients_trial(proc, base: str, n_slow: int, timeout_s: float, api_key: str | None = None) -> dict:
    """Open `n_slow` stalled connections of three kinds (nothing sent; half a head; a head with the API key
    and half a body); others must still be served, and every stalled one must be closed (the stalled
    bodies answered 408) within timeout_s + 2 s."""
    import socket

    import httpx

    port = int(base.rsplit(":", 1)[1])
    key = b"" if api_key is None else b"X-API-Key: " + api_key.encode() + b"\r\n"
    heads = [b"", b"POST /predict HTTP/1.1\r\nHost: x\r\n",
             b"POST /decode HTTP/1.1\r\nHost: x\r\n" + key +
             b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"v"]
    socks = []
    for i in range(n_slow):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(heads[i % 3])
        socks.append(s)
    t0 = time.monotonic()
    others = [httpx.get(base + "/health", timeout=5).status_code for _ in range(5)]
    served_s = time.monotonic() - t0
    closed, answered_408 = 0, 0
    for s in socks:
        s.settimeout(max(0.1, timeout_s + 2 - (time.monotonic() - t0)))
        try:
            data = b""
            while True:
                part = s.recv(4096)
                if not part:
                    break
                data += part
            closed += 1
            answered_408 += data.startswith(b"HTTP/1.1 408")
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed += 1
        finally:
            s.close()
    return {"stalled": n_slow, "closed": closed, "answered_408": answered_408, "others_ok": others.count(200),
            "others_seconds": served_s, "rss_mib": rss_kib(proc.pid) / 1024}
