"""Integrity: fault injection on a real store and run, and what the hashes cost.

    python bench/integrity.py --store /work/stores/wiki --big /work/stores/linux-doc --work /work/integrity

1. Hash rates on this machine (256 MB in RAM): xxh3-128 (what nextvec uses) beside blake2b and sha256.
2. A hashed copy of each store: its vectors, texts and document ids exported to Parquet and imported
   (the vectors computed elsewhere path), so the chunks and vectors are the store's own. Import rate with
   hashing and with xxhash replaced by a no-op, side by side, alternating (--big store; ratio target >= 0.95).
   Ingest rate the same way on --ingest-sentences sentences of wiki (encoding included).
3. Open time: ConceptStore(big) hashed vs the same files under a manifest without hashes (median of 20,
   warm page cache; target < 50 ms added).
4. Fault injection on the hashed --store and a run trained on it (default recipe, --steps steps, with its
   successor memory): --flips times, a random file (uniform over files) gets one byte XORed with a random
   nonzero byte at a uniform offset; `verify` must name exactly that file, and opening (store) or loading
   (checkpoints, run JSON, metrics) must refuse it where the file is checked at open (every run file; store
   files up to 32 MB; the indexes/ cache is rebuilt, not refused). The byte is restored after each trial
   (verify and open only read; the copy is checked clean every 100 trials). Then every file cut by one
   byte and grown by one byte; then --clean untouched fresh copies verified: 0 false alarms expected.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import time
from pathlib import Path

import numpy as np

from nextvec.errors import NextvecError


def hash_rates() -> dict:
    import xxhash

    data = np.random.default_rng(0).integers(0, 255, size=256 << 20, dtype=np.uint8).tobytes()
    out = {}
    for name, fn in (("xxh3-128", lambda d: xxhash.xxh3_128(d).hexdigest()),
                     ("blake2b-128", lambda d: hashlib.blake2b(d, digest_size=16).hexdigest()),
                     ("sha256", lambda d: hashlib.sha256(d).hexdigest())):
        t = time.perf_counter()
        fn(data)
        out[name] = round(len(data) / (time.perf_counter() - t) / 1e9, 2)
    return out


def export_parquet(store_root: Path, out: Path, block: int = 50_000) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextvec.store import ConceptStore

    st = ConceptStore(store_root)
    ids = st.doc_ids
    with pq.ParquetWriter(out, pa.schema([("doc_id", pa.string()), ("text", pa.string()),
                                          ("vector", pa.list_(pa.float32(), st.dim))])) as w:
        for a in range(0, len(st), block):
            b = min(a + block, len(st))
            v = st.get(slice(a, b))
            w.write_table(pa.table({"doc_id": [f"{d}:{ids[d]}" for d in st.doc_of(np.arange(a, b))], "text": st.texts(range(a, b)),
                                    "vector": pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), st.dim)}))
    return out


class NoHash:
    """xxhash.xxh3_128 replaced by nothing: the cost of hashing, measured by taking it away."""

    def __init__(self, data=b""):
        pass

    def update(self, data):
        pass

    def hexdigest(self):
        return "0" * 32


def timed(fn, hashing: bool) -> float:
    import xxhash

    real = xxhash.xxh3_128
    xxhash.xxh3_128 = real if hashing else NoHash
    try:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t
    finally:
        xxhash.xxh3_128 = real


def write_rates(parquet: Path, work: Path, sentences: int, repeats: int) -> dict:
    from nextvec.ingest import IngestOptions, ingest
    from nextvec.vector_import import ImportOptions, import_vectors

    jsonl = wiki_sample(work / "ingest.jsonl", sentences)
    out = {"import": {True: [], False: []}, "ingest": {True: [], False: []}}
    for r in range(repeats):
        for hashing in ((True, False) if r % 2 == 0 else (False, True)):
            dest = work / f"imp-{hashing}"
            shutil.rmtree(dest, ignore_errors=True)
            out["import"][hashing].append(timed(lambda: import_vectors(parquet, dest, ImportOptions(
                encoder_name="bench", normalized=True, progress=False)), hashing))
            dest = work / f"ing-{hashing}"
            shutil.rmtree(dest, ignore_errors=True)
            out["ingest"][hashing].append(timed(lambda: ingest(str(jsonl), dest, IngestOptions(encoder="minilm", progress=False),
                                                               log=lambda m: None), hashing))
    return {k: {"hashed_s": min(v[True]), "unhashed_s": min(v[False]), "ratio": round(min(v[False]) / min(v[True]), 3)}
            for k, v in out.items()}


def wiki_sample(path: Path, sentences: int) -> Path:
    from nextvec.corpus import get_corpus

    n, lines = 0, []
    for line in open(get_corpus("wiki")):
        d = json.loads(line)
        lines.append(json.dumps({"id": d["id"], "text": " ".join(d["sentences"])}))
        n += len(d["sentences"])
        if n >= sentences:
            break
    path.write_text("\n".join(lines) + "\n")
    return path


def open_cost(root: Path, work: Path, n: int = 20) -> dict:
    from nextvec.store import ConceptStore
    from nextvec.store.format import read_manifest

    legacy = work / "legacy-open"
    shutil.rmtree(legacy, ignore_errors=True)
    legacy.mkdir()
    for p in root.iterdir():
        if p.is_file() and p.name != "manifest.json":
            (legacy / p.name).hardlink_to(p)
    m = read_manifest(root)
    m.pop("files")
    for s in m["shards"]:
        for k in ("vectors_xxh3", "texts_xxh3", "listing_xxh3"):
            s.pop(k, None)
    (legacy / "manifest.json").write_text(json.dumps(m))
    times = {}
    for name, path in (("hashed", root), ("unhashed", legacy)):
        ConceptStore(path)  # warm
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            ConceptStore(path)
            ts.append(time.perf_counter() - t)
        times[name] = statistics.median(ts) * 1000
    return {"hashed_ms": round(times["hashed"], 2), "unhashed_ms": round(times["unhashed"], 2),
            "added_ms": round(times["hashed"] - times["unhashed"], 2)}


def opens(kind: str, folder: Path) -> None:
    from nextvec.store import ConceptStore
    from nextvec.run.checkpoint import load_model
    from nextvec.run.folder import read_metrics_lines, read_run_json

    if kind == "store":
        ConceptStore(folder)
        return
    for name in ("best", "last"):
        load_model(folder / "checkpoints" / f"{name}.safetensors")
    for name in ("config.json", "summary.json", "memory.json"):
        read_run_json(folder, name)
    read_metrics_lines(folder)


def checked_at_open(kind: str, rel: Path, size: int) -> bool:
    from nextvec.integrity import SMALL_BYTES

    return kind == "run" or ("indexes" not in rel.parts and size <= SMALL_BYTES)


def files_of(folder: Path) -> list[Path]:
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "tensorboard" not in p.parts)


def inject(copies: dict[str, Path], flips: int, seed: int) -> dict:
    from nextvec.verify import damaged, verify

    rng = random.Random(seed)
    targets = [(kind, root, rel) for kind, root in copies.items() for rel in files_of(root)]
    stats = {"flips": 0, "verify_named": 0, "open_expected": 0, "open_refused": 0, "missed": []}
    for t in range(flips):
        kind, root, rel = rng.choice(targets)
        path = root / rel
        data = bytearray(path.read_bytes())
        i = rng.randrange(len(data))
        original, data[i] = data[i], data[i] ^ rng.randrange(1, 256)
        path.write_bytes(bytes(data))
        try:
            stats["flips"] += 1
            named = damaged(verify(root)) == [str(rel)]
            stats["verify_named"] += named
            if not named:
                stats["missed"].append(f"verify: {kind}/{rel} byte {i}")
            if checked_at_open(kind, rel, len(data)):
                stats["open_expected"] += 1
                try:
                    opens(kind, root)
                    stats["missed"].append(f"open: {kind}/{rel} byte {i}")
                except NextvecError:
                    stats["open_refused"] += 1
        finally:
            data[i] = original
            path.write_bytes(bytes(data))
        if t % 100 == 99:
            assert not any(damaged(verify(r)) for r in copies.values()), "a restored copy does not verify clean"
    return stats


def cut_and_grow(copies: dict[str, Path]) -> dict:
    from nextvec.verify import damaged, verify

    out = {"cases": 0, "named": 0, "missed": []}
    for kind, root in copies.items():
        for rel in files_of(root):
            path = root / rel
            data = path.read_bytes()
            for how, changed in (("cut", data[:-1]), ("grow", data + b"\0")):
                path.write_bytes(changed)
                out["cases"] += 1
                ok = damaged(verify(root)) == [str(rel)]
                out["named"] += ok
                if not ok:
                    out["missed"].append(f"{how}: {kind}/{rel}")
                path.write_bytes(data)
    return out


def clean_copies(copies: dict[str, Path], work: Path, n: int) -> int:
    from nextvec.verify import damaged, verify

    alarms = 0
    for i in range(n):
        for kind, root in copies.items():
            dest = work / f"clean-{kind}"
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(root, dest)
            alarms += bool(damaged(verify(dest)))
    return alarms


def train_run(store: Path, run: Path, steps: int) -> None:
    from nextvec.config import LVMConfig, load_config
    from nextvec.train.loop import train

    if not (run / "summary.json").is_file():
        train(store, load_config(LVMConfig, None, [f"train.max_steps={steps}", f"train.val_every={steps // 2}",
                                                   "train.progress=false"]), run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", type=Path, required=True, help="a real store (fault injection; copied, hashed)")
    ap.add_argument("--big", type=Path, help="a larger real store: import rate and open time")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nextvec-integrity"))
    ap.add_argument("--flips", type=int, default=1000)
    ap.add_argument("--clean", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--ingest-sentences", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("integrity.json"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    from nextvec.vector_import import ImportOptions, import_vectors

    res = {"hash_GBps": hash_rates()}
    print("hash rates (GB/s):", res["hash_GBps"], flush=True)
    if args.big:
        parquet = export_parquet(args.big, args.work / "big.parquet")
        res["write"] = write_rates(parquet, args.work, args.ingest_sentences, args.repeats)
        print("write rates:", res["write"], flush=True)
        res["open"] = open_cost(args.work / "imp-True", args.work)
        print("open:", res["open"], flush=True)
    store, run = args.work / "store", args.work / "run"
    if not (store / "manifest.json").is_file():
        import_vectors(export_parquet(args.store, args.work / "store.parquet"), store,
                       ImportOptions(encoder_name="bench", normalized=True, progress=False))
    train_run(store, run, args.steps)
    copies = {}
    for kind, src in (("store", store), ("run", run)):
        copies[kind] = args.work / f"inject-{kind}"
        shutil.rmtree(copies[kind], ignore_errors=True)
        shutil.copytree(src, copies[kind])
    res["files"] = {k: len(files_of(r)) for k, r in copies.items()}
    t = time.perf_counter()
    res["flip"] = inject(copies, args.flips, seed=0)
    res["cut_grow"] = cut_and_grow(copies)
    res["clean_false_alarms"] = clean_copies(copies, args.work, args.clean)
    res["fault_seconds"] = round(time.perf_counter() - t, 1)
    args.out.write_text(json.dumps(res, indent=1))
    f = res["flip"]
    print(f"files: {res['files']}\nflips {f['flips']}: named by verify {f['verify_named']}; refused at open "
          f"{f['open_refused']} of {f['open_expected']} checked at open; missed {f['missed'][:5]}\n"
          f"cut/grow {res['cut_grow']['cases']}: named {res['cut_grow']['named']}; missed {res['cut_grow']['missed'][:5]}\n"
          f"false alarms on {args.clean} untouched copies of each: {res['clean_false_alarms']}")


if __name__ == "__main__":
    main()
