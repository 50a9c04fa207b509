"""Scale: stores of 1M, 5M, 20M chunks built through the import path, then training and the memory index.

Vectors derived from a real store: each synthetic document copies a random real document's length and
vectors (real lengths, real vectors) and adds Gaussian noise (sigma per dimension, then re-normalised),
with the real chunk texts. They are written as Parquet (files of 500k rows; float32 lists unless
--parquet-dtype float16), imported with `import_vectors` into a float16 store, and deleted. Per size, each
step runs in its own process; the parent polls its /proc/PID/status every 20 ms and reports the peaks of
anonymous memory (RssAnon: what the process allocated) and of file-backed memory (RssFile: mapped pages of
the store and of the libraries) separately, beside VmHWM (the kernel's high-water mark of their sum):

  import     vectors/s and peak memory of the import (Parquet -> finished store)
  train      samples/s (training steps only; the in-RAM source loads before them, the streamed first
             block during the step-0 validation) and peak memory, per recipe (--recipes):
               gru      GRU (128 wide, 1 layer, point head: a small model, so the data path matters), batch
                        256, context 5, --steps steps, validation at the end; streaming source and (up to
                        --in-ram-up-to chunks) the in-RAM source
               default  the default recipe (configs/default.toml: AMN, energy head, context 32, validation
                        on 20,000 val windows, selection by val energy score), streamed, train.memory=false,
                        --default-steps steps, validation every --default-val-every
             --threads torch threads
  memory     build time and recall@8 vs exact of the successor memory's IVF index (up to --memory-up-to)

    python bench/scale.py --real /work/scale/wiki --work /work/scale --sizes 1000000,5000000,20000000 \
        --parquet-dtype float16 --memory-up-to 0
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD_PREFIX = """
import json, sys, time
def peak_mb():
    return int(next(x for x in open("/proc/self/status") if x.startswith("VmHWM:")).split()[1]) / 1024
"""
POLL_S = 0.02  # the parent reads the child's /proc/PID/status this often

IMPORT_CHILD = CHILD_PREFIX + """
from nextvec.vector_import import ImportOptions, import_vectors
s = import_vectors(sys.argv[1], sys.argv[2], ImportOptions(encoder_name=sys.argv[3], normalized=True, dtype="float16",
                                                           progress=False))
import resource
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"chunks": s["chunks"], "seconds": s["seconds"], "vectors_per_s": s["vectors_per_s"],
                  "cpu_seconds": round(ru.ru_utime + ru.ru_stime, 1), "peak_rss_mb": peak_mb()}))
"""

TRAIN_CHILD = CHILD_PREFIX + """
from nextvec.config import LVMConfig
from nextvec.train.loop import train
steps, source, buffer, threads = int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
cfg = LVMConfig.model_validate({
    "model": {"name": "gru", "context_length": 5, "hidden_dim": 128, "num_layers": 1, "head": "point"},
    "train": {"batch_size": 256, "max_steps": steps, "val_every": steps, "val_max_windows": 2000, "patience": 0,
              "progress": False, "device": "cpu", "threads": threads, "data_source": source, "memory": False,
              "shuffle_buffer": buffer}})
s = train(sys.argv[1], cfg, sys.argv[2])
print(json.dumps({"samples_per_s": s["samples_per_s"], "data_source": s["data_source"],
                  "train_windows": s["train_windows"], "peak_rss_mb": peak_mb()}))
"""

# the default recipe as `nextvec train STORE --set train.max_steps=S --set train.val_every=V --set train.memory=false
# --set train.data_source=stream` runs it (every other setting the schema's default), with --threads threads
DEFAULT_CHILD = CHILD_PREFIX + """
from nextvec.config import LVMConfig
from nextvec.train.loop import train
steps, val_every, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cfg = LVMConfig.model_validate({"train": {"max_steps": steps, "val_every": val_every, "memory": False,
                                          "data_source": "stream", "progress": False, "threads": threads}})
s = train(sys.argv[1], cfg, sys.argv[2])
v = s["final_val"]
print(json.dumps({"samples_per_s": s["samples_per_s"], "data_source": s["data_source"],
                  "train_windows": s["train_windows"], "val_windows": s["val_windows"], "best": s["best"],
                  "val": {k: v[k] for k in ("val/loss", "val/energy_score", "val/cosine", "val/std_ratio")},
                  "peak_rss_mb": peak_mb()}))
"""

MEMORY_CHILD = CHILD_PREFIX + """
from nextvec.config import IndexConfig
from nextvec.models.memory import SuccessorMemory
from nextvec.store import ConceptStore
store = ConceptStore(sys.argv[1])
t0 = time.perf_counter()
m = SuccessorMemory(store, index=IndexConfig(kind=sys.argv[2]))
seconds = time.perf_counter() - t0
meta = getattr(m._index, "meta", {})
print(json.dumps({"kind": sys.argv[2], "keys": len(m._index), "fit_seconds": round(seconds, 1),
                  "recall_at_8": meta.get("recall"), "nlist": meta.get("nlist"), "peak_rss_mb": peak_mb()}))
"""


def proc_memory_mb(pid: int) -> dict:
    """RssAnon and RssFile of a process, MB ({} once it has exited)."""
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    out[key] = int(value.split()[0]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def child(code: str, *args, timeout: int = 7200) -> dict:
    """Run `code` in a fresh Python process (niced), polling its memory; -> the JSON on its last stdout line
    plus peak_anon_mb and peak_file_mb (the highest RssAnon and RssFile seen)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(["nice", sys.executable, "-c", code, *map(str, args)], stdout=out, stderr=err,
                                text=True)
        peak, t0 = {"RssAnon": 0.0, "RssFile": 0.0}, time.monotonic()
        while proc.poll() is None:
            for k, v in proc_memory_mb(proc.pid).items():
                peak[k] = max(peak[k], v)
            if time.monotonic() - t0 > timeout:
                proc.kill()
                raise RuntimeError(f"child ran past {timeout} s")
            time.sleep(POLL_S)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(stderr[-3000:])
    for line in stderr.splitlines():
        if line.startswith("index "):
            print("   ", line, flush=True)
    res = json.loads(stdout.strip().splitlines()[-1])
    return dict(res, peak_anon_mb=round(peak["RssAnon"], 1), peak_file_mb=round(peak["RssFile"], 1))


def write_parquet(real_root: Path, n_chunks: int, out: Path, sigma: float, seed: int = 0,
                  rows_per_file: int = 500_000, dtype: str = "float32") -> None:
    """Synthetic documents copied from real ones (length, vectors, texts) plus noise, as Parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextvec.store import ConceptStore

    real = ConceptStore(real_root)
    vecs = real.get(slice(None))  # (N_real, D) float32: small
    texts = real.texts(range(len(real)))
    offsets, D = real.doc_offsets, real.dim
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("doc_id", pa.string()), ("text", pa.string()), ("vector", pa.list_(pa.from_numpy_dtype(dtype)))])
    row, doc, file_no = 0, 0, 0
    while row < n_chunks:
        ids, rows = [], []
        while len(rows) < rows_per_file and row + len(rows) < n_chunks:
            d = int(rng.integers(real.n_docs))
            a, b = int(offsets[d]), int(offsets[d + 1])
            b = min(b, a + n_chunks - row - len(rows))
            rows.extend(range(a, b))
            ids.extend([f"syn-{doc:09d}"] * (b - a))
            doc += 1
        rows = np.asarray(rows)
        v = vecs[rows] + rng.standard_normal((len(rows), D), dtype=np.float32) * sigma
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        col = pa.ListArray.from_arrays(pa.array(np.arange(0, len(rows) * D + 1, D, dtype=np.int32)),
                                       pa.array(v.astype(dtype).reshape(-1)))
        table = pa.table({"doc_id": ids, "text": [texts[i] for i in rows], "vector": col}, schema=schema)
        pq.write_table(table, out / f"part-{file_no:04d}.parquet", row_group_size=65536)
        row += len(rows)
        file_no += 1


def train_runs(n: int, args) -> list[str]:
    """The training runs of one round at n chunks: "stream" and "memory" (the GRU's sources), "default"."""
    recipes = args.recipes.split(",")
    gru = ["stream"] + (["memory"] if n <= args.in_ram_up_to else []) if "gru" in recipes else []
    return gru + (["default"] if "default" in recipes else [])


def bench_size(n: int, args) -> dict:
    work = Path(args.work)
    src, store, runs = work / f"syn-{n}.parquet.d", work / f"store-{n}", work / f"runs-{n}"
    res: dict = {"chunks": n}
    if not (store / "manifest.json").exists() or not json.loads((store / "manifest.json").read_text())["complete"]:
        t0 = time.perf_counter()
        write_parquet(Path(args.real), n, src, args.sigma, dtype=args.parquet_dtype)
        res["parquet_seconds"] = round(time.perf_counter() - t0, 1)
        res["parquet_gb"] = round(sum(p.stat().st_size for p in src.iterdir()) / 1e9, 2)
        shutil.rmtree(store, ignore_errors=True)
        from nextvec.encode.sentence_transformer import MINILM_NAME

        res["import"] = child(IMPORT_CHILD, src, store, MINILM_NAME)
        print(f"{n:>10,} import {res['import']}", flush=True)
        shutil.rmtree(src)
    for _ in range(args.rounds):  # runs alternate; the faster round of each counts (the machine is shared)
        for name in train_runs(n, args):
            shutil.rmtree(runs / name, ignore_errors=True)
            if name == "default":
                r = child(DEFAULT_CHILD, store, runs / name, args.default_steps, args.default_val_every, args.threads)
            else:
                r = child(TRAIN_CHILD, store, runs / name, args.steps, name, args.shuffle_buffer, args.threads)
            print(f"{n:>10,} train {name} {r}", flush=True)
            res.setdefault(f"rounds_{name}", []).append(r)
            best = res.get(f"train_{name}")
            peaks = {k: max(r[k], (best or r)[k]) for k in ("peak_rss_mb", "peak_anon_mb", "peak_file_mb")}
            res[f"train_{name}"] = dict(r if best is None or r["samples_per_s"] > best["samples_per_s"] else best,
                                        **peaks)
    if n <= args.memory_up_to:
        for kind in args.memory_kinds.split(","):
            shutil.rmtree(store / "indexes", ignore_errors=True)
            res[f"memory_{kind}"] = child(MEMORY_CHILD, store, kind)
            print(f"{n:>10,} memory {res[f'memory_{kind}']}", flush=True)
    shutil.rmtree(runs, ignore_errors=True)
    if not args.keep_stores:
        shutil.rmtree(store, ignore_errors=True)
    return res


def table(results: list[dict]) -> str:
    lines = ["| chunks | import vectors/s (per CPU-s) | import peak anon / file | GRU stream samples/s | GRU stream peak "
             "anon / file | GRU in-RAM samples/s | GRU in-RAM peak anon / file | GRU stream / in-RAM per round | "
             "default samples/s | default peak anon / file | default val energy score | memory IVF fit s | recall@8 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cell = lambda d, k, f: f.format(d[k]) if d.get(k) is not None else "-"  # noqa: E731
    mem = lambda d: f"{d['peak_anon_mb']:,.0f} / {d['peak_file_mb']:,.0f} MB" if "peak_anon_mb" in d else "-"  # noqa: E731
    for r in results:
        imp, st, ram, dflt, ivf = (r.get(k, {}) for k in ("import", "train_stream", "train_memory", "train_default",
                                                           "memory_ivf"))
        per_cpu = f" ({imp['chunks'] / imp['cpu_seconds']:,.0f})" if imp.get("cpu_seconds") else ""
        ratios = " ".join(f"{a['samples_per_s'] / b['samples_per_s']:.2f}"
                          for a, b in zip(r.get("rounds_stream", []), r.get("rounds_memory", []))) or "-"
        energy = f"{dflt['val']['val/energy_score']:.4f}" if dflt.get("val") else "-"
        lines.append(f"| {r['chunks']:,} | {cell(imp, 'vectors_per_s', '{:,.0f}')}{per_cpu} | {mem(imp)} "
                     f"| {cell(st, 'samples_per_s', '{:,.0f}')} | {mem(st)} | {cell(ram, 'samples_per_s', '{:,.0f}')} "
                     f"| {mem(ram)} | {ratios} | {cell(dflt, 'samples_per_s', '{:,.0f}')} | {mem(dflt)} | {energy} "
                     f"| {cell(ivf, 'fit_seconds', '{:.1f}')} | {cell(ivf, 'recall_at_8', '{:.3f}')} |")
    return "\n".join(lines)


def save(results: list[dict], out: Path, tag: str) -> None:
    """results under `tag` in the JSON file `out`, the rounds kept there under other tags left as they are."""
    kept = json.loads(out.read_text()) if out.is_file() else {}
    kept = kept if isinstance(kept, dict) else {"untagged": kept}
    kept[tag] = results
    out.write_text(json.dumps(kept, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", required=True, help="a real store (its vectors, texts and document lengths)")
    ap.add_argument("--work", default="/work/scale", help="folder for the Parquet files, stores and runs")
    ap.add_argument("--sizes", default="1000000,5000000,20000000")
    ap.add_argument("--recipes", default="gru,default", help="training runs: gru (point-head GRU, streamed and "
                    "in-RAM), default (the default recipe, streamed)")
    ap.add_argument("--steps", type=int, default=200, help="steps of the GRU runs")
    ap.add_argument("--default-steps", type=int, default=200, help="steps of the default-recipe runs")
    ap.add_argument("--default-val-every", type=int, default=100, help="train.val_every of the default-recipe runs")
    ap.add_argument("--shuffle-buffer", type=int, default=16384, help="train.shuffle_buffer of the streamed runs: "
                    "small enough that a short run streams several blocks, as a long run does")
    ap.add_argument("--rounds", type=int, default=1, help="training rounds per run, alternating; best counts")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training runs")
    ap.add_argument("--sigma", type=float, default=0.03, help="noise per dimension before re-normalising")
    ap.add_argument("--parquet-dtype", default="float32", help="vector type in the Parquet files (the store is "
                    "float16 either way); pyarrow decodes float16 lists ~4x slower than float32")
    ap.add_argument("--in-ram-up-to", type=int, default=1_000_000)
    ap.add_argument("--memory-up-to", type=int, default=1_000_000)
    ap.add_argument("--memory-kinds", default="ivf,flat")
    ap.add_argument("--keep-stores", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).with_name("scale.json")))
    ap.add_argument("--tag", default="latest", help="key of this run's results in --out (other keys are kept)")
    args = ap.parse_args()
    results = []
    for n in (int(x) for x in args.sizes.split(",")):
        results.append(bench_size(n, args))
        save(results, Path(args.out), args.tag)
    print(table(results))


if __name__ == "__main__":
    main()
