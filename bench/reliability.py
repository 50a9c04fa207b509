"""Reliability attacks at full size; prints one table: trial, count, outcome.

    python bench/reliability.py                 # 20 ingest kills, 10 training kills, 10,000 inputs per fuzzer,
                                                # 60 s of load at concurrency 32 (about an hour on 2 busy cores)
    python bench/reliability.py --fuzz 500 --ingest-kills 4 --train-kills 2 --load-seconds 10   # a quick pass

The attacks live in tests/reliability/attacks.py and hostile.py (the test suite runs the same code at CI size).
Mount-based trials (a real full tmpfs, a read-only bind mount) need root with mount permission; they report
"skipped" otherwise. Only 127.0.0.1 traffic.
"""

from __future__ import annotations

import argparse
import errno
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "reliability"))

import attacks  # noqa: E402
import hostile  # noqa: E402

ROWS: list[tuple[str, str, str]] = []


def row(trial: str, count, outcome: str) -> None:
    ROWS.append((trial, str(count), outcome))
    print(f"[{time.strftime('%H:%M:%S')}] {trial}: {count} -> {outcome}", file=sys.stderr, flush=True)


def crash_ingest(work: Path, n: int) -> tuple[Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    corpus = attacks.make_corpus(work / "corpus.jsonl", n_docs=300)
    ref = work / "ref_store"
    window = attacks.timed_run(attacks.ingest_args(corpus, ref), lambda: ref.exists())
    rng = random.Random(0)
    res = [attacks.crash_ingest_trial(corpus, ref, work / f"kill{i}", window * 1.1, rng, check_info_cli=True)
           for i in range(n)]
    killed = sum(r["killed"] for r in res)
    bad = [r for r in res if r["diffs"] or not r["info_ok"]]
    states = {s: sum(r["state"] == s for r in res) for s in {r["state"] for r in res}}
    row("ingest SIGKILL at random moments, rerun", n,
        f"{'PASS' if not bad else 'FAIL'}: {killed} killed mid-run ({states}); final store == uninterrupted "
        f"(chunks, vectors, splits) in {n - len(bad)}/{n}; `nextvec info` clear each time"
        + (f"; first failure {bad[0]}" if bad else ""))
    return corpus, ref


def crash_train(work: Path, ref: Path, n: int) -> None:
    run = work / "ref_run"
    window = attacks.timed_run(attacks.train_args(ref, run), lambda: (run / "metrics.jsonl").exists())
    rng = random.Random(1)
    res = [attacks.crash_train_trial(ref, run, work / f"run{i}", window * 0.35, rng) for i in range(n)]
    bad = [r for r in res if r["mismatch"] or not r["final_equal"]]
    steps = sorted(r["resumed_from"] for r in res if r["resumed_from"] is not None)
    row("train SIGKILL at random moments, --resume", n,
        f"{'PASS' if not bad else 'FAIL'}: {sum(r['killed'] for r in res)} killed, resumed from steps {steps}; "
        f"next {min(r['compared'] for r in res)}+ steps' records (every loss term, lr) identical in "
        f"{n - len(bad)}/{n}" + (f"; first failure {bad[0]}" if bad else ""))


def disk(work: Path, corpus: Path, ref: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    n_writes = attacks.count_writes(corpus, work / "count")
    for err in (errno.ENOSPC, errno.EROFS):
        res = [attacks.failing_disk_trial(corpus, ref, work / f"{errno.errorcode[err]}{k}", k, err)
               for k in range(1, n_writes + 1)]
        bad = [r for r in res if not r["clear"] or r["state"] != "refused" or r["rerun_diffs"] != []]
        row(f"{errno.errorcode[err]} at every write of an ingest (simulated)", n_writes,
            f"{'PASS' if not bad else 'FAIL'}: clear error, incomplete store refused clearly, rerun == uninterrupted "
            f"in {n_writes - len(bad)}/{n_writes}" + (f"; first failure {bad[0]}" if bad else ""))
    for size in (300, 700):
        r = attacks.real_full_disk_trial(corpus, ref, work / f"mnt{size}", size_k=size)
        if r is None:
            row(f"real full tmpfs ({size} KiB)", 0, "skipped: mount not permitted")
            continue
        ok = r["clear"] and r["info_ok"] and r["rerun_diffs"] == []
        row(f"real full tmpfs ({size} KiB)", 1, f"{'PASS' if ok else 'FAIL'}: {r['message']!r}; info: {r['info'][:70]!r}; "
            f"grown + rerun == uninterrupted: {r['rerun_diffs'] == []}")
    r = attacks.read_only_trial(corpus, ref, work)
    if r is None:
        row("read-only bind mount", 0, "skipped: mount not permitted")
    else:
        ok = r["clear"] and r["info_ok"] and r["diffs"] == []
        row("read-only bind mount", 1, f"{'PASS' if ok else 'FAIL'}: ingest {r['message']!r}; a finished store on it "
            f"opens and `nextvec info` works: {r['info_ok']}")


def fuzzers(work: Path, n: int) -> None:
    from fastapi.testclient import TestClient

    for name in ("reader-txt", "reader-md", "reader-html", "jsonl", "parquet", "chunker"):
        t0 = time.perf_counter()
        try:
            count = hostile.fuzz(name, n)
            row(f"hypothesis: {name}", count, f"PASS: 0 crashes ({time.perf_counter() - t0:.0f} s)")
        except Exception as e:  # noqa: BLE001 - the table reports it
            row(f"hypothesis: {name}", n, f"FAIL: {type(e).__name__}: {str(e)[:300]} {getattr(e, '__notes__', '')}")
    with TestClient(hostile.make_app(root=work / "http")) as client:
        t0 = time.perf_counter()
        try:
            count = hostile.fuzz("http", n, client)
            row("hypothesis: every HTTP endpoint", count, f"PASS: 0 crashes, 0 5xx, every 4xx has a detail "
                f"({time.perf_counter() - t0:.0f} s)")
        except Exception as e:  # noqa: BLE001
            row("hypothesis: every HTTP endpoint", n, f"FAIL: {type(e).__name__}: {str(e)[:300]} {getattr(e, '__notes__', '')}")


def checkpoints() -> None:
    import pytest

    rc = pytest.main(["-q", "-p", "no:cacheprovider", str(Path(attacks.__file__).parent / "test_checkpoints.py")])
    row("crafted pickle checkpoints x 6 loaders; other encoder/dim", 3 * 6 + 6,
        "PASS: refused, payload never ran" if rc == 0 else f"FAIL (pytest exit {rc})")


def server(work: Path, seconds: float, concurrency: int) -> None:
    import httpx

    key = "bench-key"
    p, base = attacks.start_server(work / "srv", api_key=key, max_body_bytes=4_000_000)
    try:
        h = {"X-API-Key": key}
        big = b'{"vectors": [' + b"[1.0]," * 1_500_000 + b"[1.0]]}"  # 9 MB

        def attack_round():
            codes = [httpx.post(base + "/decode", content=big, headers={**h, "content-type": "application/json"},
                                timeout=30).status_code for _ in range(10)]
            codes += [httpx.post(base + "/encode", json={"texts": ["a"] * 10_000}, headers=h, timeout=30).status_code
                      for _ in range(5)]
            codes += [httpx.post(base + "/decode", json={"vectors": [[0.5] * 100_000] * 3}, headers=h,
                                 timeout=30).status_code for _ in range(5)]
            return codes

        codes = attack_round()  # the first round sets the allocator's high-water mark
        rss0 = attacks.rss_kib(p.pid)
        for _ in range(10):  # then memory must not grow with further refused requests
            codes += attack_round()
        growth = (attacks.rss_kib(p.pid) - rss0) / rss0
        row("oversized bodies / too many texts / huge vectors", len(codes),
            f"{'PASS' if set(codes) <= {413, 422} and growth < 0.1 else 'FAIL'}: statuses {sorted(set(codes))}, "
            f"RSS growth {growth:+.1%}")
        no_key = [httpx.post(base + path, json={}, timeout=10).status_code
                  for path in ("/encode", "/predict", "/decode", "/generate")]
        row("API key: endpoints without it", 4, f"{'PASS' if set(no_key) == {401} else 'FAIL'}: {no_key}; "
            f"/health {httpx.get(base + '/health', timeout=5).status_code}")
        s = attacks.slow_clients_trial(p, base, n_slow=60, timeout_s=10, api_key=key)
        ok = s["closed"] == s["stalled"] and s["others_ok"] == 5
        row("slow clients (no bytes / half head / half body)", s["stalled"],
            f"{'PASS' if ok else 'FAIL'}: {s['closed']} closed within 12 s ({s['answered_408']} with 408), others "
            f"served in {s['others_seconds']:.2f} s meanwhile")
        r = attacks.load_trial(p, base, seconds=seconds, concurrency=concurrency, api_key=key)
        ok = r["errors"] == 0 and r["rss_growth"] < 0.10
        row(f"load {seconds:.0f} s, concurrency {concurrency}, /predict + /decode", r["requests"],
            f"{'PASS' if ok else 'FAIL'}: {r['errors']} errors, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
            f"{r['rps']:.0f} req/s, RSS {r['rss_start_mib']:.0f} -> {r['rss_end_mib']:.0f} MiB "
            f"({r['rss_growth']:+.1%})" + (f"; {r['first_errors']}" if r["errors"] else ""))
    finally:
        attacks.stop_server(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ingest-kills", type=int, default=20)
    ap.add_argument("--train-kills", type=int, default=10)
    ap.add_argument("--fuzz", type=int, default=10_000, help="generated inputs per reader / chunker / HTTP fuzzer")
    ap.add_argument("--load-seconds", type=float, default=60)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--only", default="", help="comma list of: crash,disk,fuzz,checkpoints,server")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(","))) or {"crash", "disk", "fuzz", "checkpoints", "server"}
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="nextvec-reliability-"))
    t0 = time.time()
    try:
        corpus, ref = None, None
        if "crash" in only:
            corpus, ref = crash_ingest(work / "ingest", args.ingest_kills) if args.ingest_kills else (None, None)
            if ref is not None and args.train_kills:
                crash_train(work / "ingest", ref, args.train_kills)
        if "disk" in only:
            if ref is None:
                (work / "ingest").mkdir(parents=True, exist_ok=True)
                corpus = attacks.make_corpus(work / "ingest" / "corpus.jsonl", n_docs=300)
                ref = work / "ingest" / "ref_store"
                attacks.ingest_inprocess(corpus, ref)
            disk(work / "disk", corpus, ref)
        if "checkpoints" in only:
            checkpoints()
        if "server" in only:
            server(work, args.load_seconds, args.concurrency)
        if "fuzz" in only:
            fuzzers(work, args.fuzz)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    w = max(len(r[0]) for r in ROWS)
    print(f"\n| {'trial':{w}s} | count | outcome |\n|{'-' * (w + 2)}|------:|---------|")
    for trial, count, outcome in ROWS:
        print(f"| {trial:{w}s} | {count:>5s} | {outcome} |")
    print(f"\n{sum(r[2].startswith('PASS') for r in ROWS)}/{len(ROWS)} trials pass; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
