"""Learned decoder vs retrieval decoder, side by side on the same held-out vectors (CPU).

    python bench/decoder.py --decoder DECODER [--store /work/stores/wiki] [--run LVM_RUN] [--n 200] [--steps 2]
    python bench/decoder.py --train-minutes 60 --store STORE        # train a decoder first, then measure

Prints one table (learned decoder after 0..steps correction passes, and the retrieval decoder over the
TRAIN split, on exact, noised sigma 0.01 / 0.05 and, with --run, model-predicted vectors), ten decoded
examples beside their references, and the targets:
  - held-out round-trip cosine >= 0.80 and token F1 >= 0.50 after <= 60 minutes of CPU training;
  - each correction step raises the mean round-trip cosine;
  - on predicted vectors, the learned decoder's round-trip cosine (to the predicted vector) above retrieval's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", default="/work/stores/wiki")
    ap.add_argument("--decoder", help="DECODER folder or checkpoint (else --train-minutes trains one)")
    ap.add_argument("--train-minutes", type=float, default=0.0)
    ap.add_argument("--set", action="append", default=[], help="train-decoder overrides when training here")
    ap.add_argument("--run", help="LVM run folder: also decode its predicted next vectors")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--samples", type=int, default=0, help="extra sampled hypotheses per pass (best re-encoding wins)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="decoder device for decoding: cpu, cuda[:N] or auto")
    ap.add_argument("--json", help="also write the full results here")
    a = ap.parse_args(argv)

    import torch

    from nextvec.decode.learned import LearnedDecoder
    from nextvec.decode.learned_eval import evaluate_decoder, format_table
    from nextvec.options import DecoderEvalOptions
    from nextvec.session import Session
    from nextvec.encode import load_encoder
    from nextvec.store import open_store

    store = open_store(a.store)
    decoder_path = a.decoder
    if decoder_path is None:
        if a.train_minutes <= 0:
            ap.error("give --decoder or --train-minutes")
        from nextvec.config import load_config
        from nextvec.decode.learned import LearnedDecoderConfig
        from nextvec.decode.learned_train import train_decoder

        decoder_path = tempfile.mkdtemp(prefix="nextvec-decoder-")
        cfg = load_config(LearnedDecoderConfig, None, [f"train.max_minutes={a.train_minutes}", f"train.num_threads={a.threads}", *a.set])
        train_decoder(store, decoder_path, cfg, progress=True)

    enc = load_encoder("minilm")
    torch.set_num_threads(a.threads)
    dec = LearnedDecoder.load(decoder_path, samples=a.samples, device=a.device)
    meta = dec.meta
    t0 = time.time()
    lvm = None if a.run is None else Session.open(a.run, store, encoder=None)
    res = evaluate_decoder(dec, store, enc, DecoderEvalOptions(split=a.split, n=a.n, steps=a.steps), run=lvm)
    secs = time.time() - t0

    trained = float(meta.get("elapsed_minutes", float("nan")))
    print(f"decoder {meta['checkpoint']}: backbone {meta['model_config']['backbone']}, {meta.get('n_params', 0) / 1e6:.1f}M "
          f"params, step {meta.get('step')}, {trained:.1f} min of training ({meta['config']['train']['num_threads'] or 'default'} threads, "
          f"{meta.get('device', 'cpu')})")
    print(f"store {a.store}, split {a.split}, {res['n']} held-out chunks; {a.samples} sampled hypotheses per pass; "
          f"retrieval bank: {res['retrieval_bank']} split; "
          f"evaluation took {secs:.0f} s\n")
    print(format_table(res))

    print("\n10 decoded examples (exact held-out vectors, learned decoder after "
          f"{a.steps} correction steps; cos = round-trip cosine)")
    for i, e in enumerate(res["examples"][:10]):
        print(f"{i + 1:2d}. ref:       {e['reference']}\n    learned:   {e['learned']}   (cos {e['learned_cos']:.3f})\n"
              f"    retrieval: {e['retrieval']}   (cos {e['retrieval_cos']:.3f})")

    print("\ntargets")
    ex = res["exact"]["learned"]
    ok1 = ex["round_trip_cosine"] >= 0.80 and ex["token_f1"] >= 0.50 and trained <= 60
    print(f"  [{'PASS' if ok1 else 'FAIL'}] held-out round-trip cosine {ex['round_trip_cosine']:.3f} (>= 0.80), token F1 "
          f"{ex['token_f1']:.3f} (>= 0.50), after {trained:.1f} min (<= 60)")
    rt = [m["round_trip_cosine"] for m in ex["per_step"]]
    ok2 = len(rt) > 1 and all(b > a_ for a_, b in zip(rt, rt[1:]))
    print(f"  [{'PASS' if ok2 else 'FAIL'}] each correction step raises mean round-trip cosine: "
          + " -> ".join(f"{x:.4f}" for x in rt))
    if "predicted" in res:
        p = res["predicted"]
        ok3 = p["learned"]["round_trip_cosine"] > p["retrieval"]["round_trip_cosine"]
        print(f"  [{'PASS' if ok3 else 'FAIL'}] predicted vectors: learned round-trip cosine {p['learned']['round_trip_cosine']:.3f} "
              f"vs retrieval {p['retrieval']['round_trip_cosine']:.3f}")
    else:
        print("  [----] predicted vectors: not measured (pass --run LVM_RUN)")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
