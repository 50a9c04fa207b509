"""Training throughput: the nextvec trainer vs a bare PyTorch loop, per model family at its default size.

Both sides train the same model (same config and seed), with the same AdamW param groups, the same
combined loss and batches of the same size; the bare loop draws its batches from tensors gathered into
memory beforehand (context, mask, target, hard negatives), with no sampler, logging, progress bar or
checkpointing. The trainer's rate is over its training steps (sampler, batch gather, hard-negative
sampling, loss breakdown, metrics.jsonl, progress bar included; validation and checkpoint writes, which
run every `train.val_every` steps, are excluded). Each side runs twice, alternating; the faster round counts.

    python bench/train_speed.py [--steps 15] [--threads 1] [--families gru,lstm,transformer,amn]
    python bench/train_speed.py --neighbours [--steps 40]

--neighbours: the default recipe's trainer with 0, 1 and 2 CPU-burning processes beside it
(`python -c "while True: pass"`), at train.threads 1, 2 and the default (0: the cores other programs leave
idle), side by side in one run; each cell is the best of --rounds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import json

import numpy as np
import torch

from nextvec.config import LVMConfig
from nextvec.data.dataset import WindowDataset
from nextvec.losses import combined_loss, train_stats
from nextvec.models import MODELS, build_model
from nextvec.store import ConceptStore, StoreWriter
from nextvec.train.loop import make_optimizer, train

DIM, BATCH = 384, 256


def synthetic_store(root: Path, n_docs: int = 300, seed: int = 0) -> ConceptStore:
    """A store of random unit vectors with document structure (a random walk per document)."""
    rng = np.random.default_rng(seed)
    fp = {"name": "bench-random", "dim": DIM, "pooling": "none", "normalized": True, "version": "0"}
    w = StoreWriter(root, fp, params={"source": "bench"})
    for s in range(0, n_docs, 50):
        docs, vecs = [], []
        for d in range(s, min(s + 50, n_docs)):
            n = int(rng.integers(8, 40))
            v = np.cumsum(rng.normal(size=(n, DIM)), axis=0).astype(np.float32)
            vecs.append(v / np.linalg.norm(v, axis=1, keepdims=True))
            docs.append((f"doc{d}", [f"d{d} s{p}" for p in range(n)]))
        w.add_shard(docs, np.concatenate(vecs), source_end=min(s + 50, n_docs))
    w.finalize((0.8, 0.1, 0.1), seed)
    return ConceptStore(root)


def bare_loop(cfg: LVMConfig, store: ConceptStore, steps: int) -> float:
    """Samples/s of a plain loop over in-memory tensors."""
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, store.dim)
    opt = make_optimizer(model, cfg.train)
    stats = train_stats(store.mean, store.std)
    ds = WindowDataset(store, "train", cfg.model.context_length, cfg.loss.hard_negatives)
    b = ds.get_batch(np.arange(len(ds)), torch.Generator().manual_seed(0))  # everything in memory
    ctx, mask, tgt, neg, neg_mask = b.context, b.mask, b.target, b.negatives, b.negatives_mask
    g = torch.Generator().manual_seed(1)
    t0 = time.perf_counter()  # like the trainer's rate, every step counts (first one included)
    for _ in range(steps):
        i = torch.randint(len(ds), (BATCH,), generator=g)
        pred = model(ctx[i], mask[i])
        loss, _ = combined_loss(cfg.loss, stats, pred, tgt[i], neg[i], neg_mask[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
    return steps * BATCH / (time.perf_counter() - t0)


def trainer(cfg: LVMConfig, store: ConceptStore, steps: int, out: Path) -> float:
    c = cfg.model_copy(update={"train": cfg.train.model_copy(update={
        "max_steps": steps, "val_every": 10**6, "val_max_windows": 256, "progress": False, "device": "cpu",
        "memory": False})})
    return train(store.root, c, out)["samples_per_s"]


def neighbours(store: ConceptStore, steps: int, rounds: int, tmp: Path) -> None:
    """The busy-machine table: samples/s of the default recipe per (busy neighbours, train.threads)."""
    cfg = LVMConfig.model_validate({"train": {"batch_size": BATCH}})
    print(f"default recipe ({cfg.model.name}, head {cfg.model.head}, context {cfg.model.context_length}), "
          f"{steps} steps per cell, best of {rounds}")
    print("| busy neighbours | threads=1 | threads=2 | default (threads chosen) | default / idle default |")
    print("|---|---|---|---|---|")
    idle = None
    for busy in (0, 1, 2):
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(1.0)
            cells = {}
            for threads in (1, 2, 0):
                c = cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": threads})})
                runs = [trainer(c, store, steps, tmp / f"n{busy}-t{threads}-{r}") for r in range(rounds)]
                chosen = json.loads((tmp / f"n{busy}-t{threads}-0" / "summary.json").read_text())["threads"]
                cells[threads] = (max(runs), chosen)
        finally:
            for p in procs:
                p.kill()
        idle = idle or cells[0][0]
        print(f"| {busy} | {cells[1][0]:,.0f} | {cells[2][0]:,.0f} | {cells[0][0]:,.0f} ({cells[0][1]}) | "
              f"{cells[0][0] / idle:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=15, help="minimum timed steps per round")
    ap.add_argument("--seconds", type=float, default=15.0, help="target length of one round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--families", default=",".join(MODELS))
    ap.add_argument("--neighbours", action="store_true", help="the busy-machine table (see the module docstring)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nextvec-bench-"))
    store = synthetic_store(tmp / "store")
    if args.neighbours:
        return neighbours(store, max(args.steps, 40), args.rounds, tmp)
    torch.set_num_threads(args.threads)
    print(f"store: {len(store)} chunks of {DIM}-d, batch {BATCH}, rounds of >= {args.steps} steps / ~{args.seconds:.0f} s, "
          f"{args.rounds} rounds per side, {args.threads} thread(s), default model size and loss")
    print("| family | params | trainer samples/s | bare samples/s | trainer ms/batch | bare ms/batch | steps | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for fam in args.families.split(","):
        cfg = LVMConfig.model_validate({"model": {"name": fam}, "train": {"batch_size": BATCH, "threads": args.threads}})
        params = build_model(cfg.model, DIM).num_params()
        t0 = time.perf_counter()
        bare_loop(cfg, store, 2)  # probe: enough steps for ~args.seconds per round, at least args.steps
        steps = max(args.steps, int(args.seconds / ((time.perf_counter() - t0) / 2)))
        ours, bare = [], []
        for r in range(args.rounds):  # alternate so both sides share the machine's load
            ours.append(trainer(cfg, store, steps, tmp / f"{fam}-{r}"))
            bare.append(bare_loop(cfg, store, steps))
        o, b = max(ours), max(bare)
        ratios.append(o / b)
        print(f"| {fam} | {params:,} | {o:,.0f} | {b:,.0f} | {1000 * BATCH / o:.1f} | {1000 * BATCH / b:.1f} | {steps} | {o / b:.3f} |")
    print(f"ratio trainer/bare samples/s: min {min(ratios):.3f}, mean {np.mean(ratios):.3f} "
          f"over {len(ratios)} families (target >= 0.9)")


if __name__ == "__main__":
    main()
