"""Ingest throughput vs bare SentenceTransformer.encode, side by side in one run, on the same sentences.

    python bench/ingest.py [--sentences 5000] [--repeats 2]

Both sides use the same loaded all-MiniLM-L6-v2 model (load time printed separately), batch size 64.
`ingest` runs end to end from a JSONL file of running text (each document's sentences joined into one
paragraph, so the splitter does real work): read, sentence split (the default splitter), chunk cap,
chunk hygiene, encode, shard writes with fsync, finalize (packing, split, train statistics), data card.
The last line is the ratio (target >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path

from nextvec.corpus import get_corpus
from nextvec.encode import load_encoder
from nextvec.ingest import IngestOptions, ingest
from nextvec.text import DEFAULT_SPLITTER, Document, document_chunks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    docs, n = [], 0
    with open(get_corpus("wiki")) as f:
        for line in f:
            d = json.loads(line)
            docs.append(d)
            n += len(d["sentences"])
            if n >= args.sentences:
                break
    tmp = Path(tempfile.mkdtemp())
    # the same documents as running text, so ingest does the sentence splitting itself
    running = [{"id": d["id"], "text": " ".join(d["sentences"])} for d in docs]
    (tmp / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in running))

    t = time.perf_counter()
    enc = load_encoder("minilm")
    load_s = time.perf_counter() - t
    texts = [c for d in running for c in document_chunks(Document(d["id"], text=d["text"]), 400)]
    enc.encode(texts[:256])  # warm-up

    bare, full = [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        enc.model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False)
        bare.append(time.perf_counter() - t)
        out = tmp / f"store{r}"
        t = time.perf_counter()
        summary = ingest(str(tmp / "docs.jsonl"), out, IngestOptions(progress=False), encoder=enc, log=lambda m: None)
        full.append(time.perf_counter() - t)
        assert summary["chunks"] == len(texts), (summary["chunks"], len(texts))
        shutil.rmtree(out)
    shutil.rmtree(tmp)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    b, f = min(bare), min(full)
    print(f"sentences (chunks)                     {len(texts)}  (splitter {DEFAULT_SPLITTER})")
    print(f"model load                             {load_s:.1f} s (excluded from both rates)")
    print(f"bare SentenceTransformer.encode        {len(texts) / b:8.1f} sentences/s  (best of {args.repeats}: {b:.1f} s)")
    print(f"nextvec ingest, end to end             {len(texts) / f:8.1f} sentences/s  (best of {args.repeats}: {f:.1f} s)")
    print(f"peak RSS                               {peak_mb:.0f} MB")
    print(f"ratio ingest / bare encode             {b / f:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
