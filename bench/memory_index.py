"""The successor memory with an approximate index vs the exact one: same model, same fitted gate, same test
windows; only the memory's FAISS index differs (issue 16: model+memory test MRR within 0.005 of exact).

    python bench/memory_index.py --run RUN --store STORE [--kinds flat,ivf,ivfpq] [--out bench/memory_index.json]

RUN must hold a fitted memory (RUN/memory.json, written by `nextvec train`). Every kind is forced through
`index.kind` (whatever `auto` would pick at this size), with the run's other index
settings; an approximate index is built, its recall@8 vs exact measured and printed, and saved under
STORE/indexes/ as `nextvec` does. Prints test cosine and MRR of model+memory per kind and the differences
to the exact (flat) row, and the time to draw 8 samples for one context with the run's sampling gate (1
thread, median of 200 calls, as bench/generative.py times it): the search is what grows with the keys.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nextvec.evaluate import evaluate_run, write_json
from nextvec.options import EvaluateOptions
from nextvec.models.memory import MemoryPredictor, SuccessorMemory
from nextvec.session import Session
from nextvec.run.folder import MEMORY_FILE, read_run_json, run_index_config

from generative import sample_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--kinds", default="flat,ivf,ivfpq")
    ap.add_argument("--out", default=str(Path(__file__).with_name("memory_index.json")))
    args = ap.parse_args()
    s = Session.open(args.run, args.store, encoder="none")
    fit = read_run_json(args.run, MEMORY_FILE)
    base = run_index_config(args.run)
    rows = []
    for kind in args.kinds.split(","):
        t0 = time.perf_counter()
        memory = SuccessorMemory(s.store, index=base.model_copy(update={"kind": kind}))
        build_s = time.perf_counter() - t0
        pred = MemoryPredictor(s.model, memory, fit["weight"], fit["threshold"], fit.get("sample_weight", 0.0),
                               fit.get("sample_threshold", 0.0))
        t0 = time.perf_counter()
        ev = evaluate_run(Session.assemble(pred, {"context_length": s.context_length}, s.store),
                          EvaluateOptions(baselines=False, samples=0, rollout=0))
        row = ev["rows"][0]
        rows.append({"kind": kind, "keys": len(memory._index), "build_s": round(build_s, 1),
                     "recall_at_8": getattr(memory._index, "meta", {}).get("recall", 1.0),
                     "eval_s": round(time.perf_counter() - t0, 1), "cosine": row["cosine"], "mrr": row["mrr"],
                     "sample_ms": sample_ms(pred, s.store, s.context_length)})
        print(json.dumps(rows[-1]), flush=True)
    exact = next(r for r in rows if r["kind"] == "flat")
    print(f"\nmodel+memory on the test split of {args.store} ({exact['keys']:,} memory keys; gate weight "
          f"{fit['weight']}, threshold {fit['threshold']})")
    print("| index | build s | recall@8 | test cosine | test MRR | MRR - exact | 8 samples, median (fastest) |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
        ms = r["sample_ms"]
        print(f"| {r['kind']} | {r['build_s']} | {r['recall_at_8']:.3f} | {r['cosine']:.4f} | {r['mrr']:.4f} | "
              f"{r['mrr'] - exact['mrr']:+.4f} | {ms['median']:.1f} ({ms['min']:.1f}) ms |")
    write_json(rows, args.out)


if __name__ == "__main__":
    main()
