"""Held-out evaluation of the learned decoder, always beside the retrieval decoder on the same vectors.

Conditions: the exact store vectors of held-out chunks, the same vectors with per-dimension Gaussian
noise (re-normalised for unit-norm encoders), and, given an LVM run, the model's predicted next vectors
(the A/B/C diagnostic's column C; references are the true next chunks). For each: token F1, corpus BLEU,
exact match (all case-insensitive, see metrics.py) and round-trip cosine = cos(vector, encode(decoded
text)), where "vector" is the vector that was decoded (the noised or predicted one).

The retrieval decoder searches the TRAIN split by default, so a held-out sentence is never in its bank
(with the whole store as bank, exact vectors decode to themselves and the comparison says nothing).
"""

from __future__ import annotations

import numpy as np

from nextvec.decode.learned import LearnedDecoder
from nextvec.decode.learned_train import noisy
from nextvec.decode.metrics import text_metrics
from nextvec.options import DecoderEvalOptions
from nextvec.vecmath import cosine_rows
from nextvec.errors import NextvecError, check_fingerprint



def _summary(texts, refs, cos) -> dict:
    return {**text_metrics(texts, refs), "round_trip_cosine": float(np.mean(cos)) if len(cos) else float("nan")}


def predicted_vectors(session, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, D) next-vector predictions (y_cos) of an opened LVM run on `split`, and the target chunk ids."""
    from nextvec.data.windows import window_targets
    from nextvec.models.base import predict_windows

    store = session.store
    targets = window_targets(store, split)
    if len(targets) == 0:
        raise NextvecError(f"split {split!r} of {store.root} has no windows to predict")
    rng = np.random.default_rng(seed)
    targets = np.sort(rng.choice(targets, min(n, len(targets)), replace=False))
    T = session.window
    _, y_cos, _ = predict_windows({"model": session.model}, store, targets, T, batch_size=256)["model"]
    return y_cos, targets


def evaluate_decoder(decoder: LearnedDecoder, store, encoder, options: DecoderEvalOptions | None = None,
                     run=None) -> dict:
    """Metrics of `decoder` (with `options.steps` correction passes) and the retrieval decoder on a split of
    `store`; `run`, an opened LVM Session on the same store, adds its predicted next vectors."""
    from nextvec.decode.nearest import RetrievalDecoder

    o = options or DecoderEvalOptions()
    split, n, seed, retrieval_split = o.split, o.n, o.seed, o.retrieval_split
    decoder.check_store(store)
    check_fingerprint(store.fingerprint, encoder.fingerprint(), "the encoder")
    if decoder.encoder is None:
        decoder.encoder = encoder
    steps = decoder.steps if o.steps is None else o.steps
    ids = store.split_chunks(split)
    if len(ids) == 0:
        raise NextvecError(f"split {split!r} of {store.root} is empty")
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(ids, min(n, len(ids)), replace=False))
    exact = store.get(ids)
    refs = store.texts(ids)
    normalized = bool(store.fingerprint.get("normalized", False))
    conditions: dict[str, tuple[np.ndarray, list[str]]] = {"exact": (exact, refs)}
    for sigma in o.noise_levels:
        conditions[f"noise_{sigma:g}"] = (noisy(exact, float(sigma), np.random.default_rng([seed, int(sigma * 1e6)]), normalized), refs)
    if run is not None:
        pv, targets = predicted_vectors(run, split, n, seed)
        conditions["predicted"] = (pv, store.texts(targets))

    retrieval = RetrievalDecoder(store, split=retrieval_split)
    result: dict = {"split": split, "n": len(ids), "steps": steps, "retrieval_bank": retrieval_split or "all",
                    "store": str(store.root), "decoder": decoder.meta.get("checkpoint"),
                    "decoder_step": decoder.meta.get("step")}
    examples = None
    for name, (vecs, rf) in conditions.items():
        passes = decoder.decode_steps(vecs, steps)
        per_step = [_summary(p["texts"], rf, p["scores"]) for p in passes]
        r_texts = [c[0][0] if c else "" for c in retrieval.decode(vecs, k=1)]
        r_cos = cosine_rows(vecs, encoder.encode(r_texts))
        block = {"learned": dict(per_step[-1], per_step=per_step), "retrieval": _summary(r_texts, rf, r_cos), "n": len(vecs)}
        if name == "predicted":
            block["run"] = run.checkpoint
        result[name] = block
        if name == "exact":
            examples = [{"reference": r, "learned": t, "learned_cos": float(c), "retrieval": rt, "retrieval_cos": float(rc)}
                        for r, t, c, rt, rc in zip(rf, passes[-1]["texts"], passes[-1]["scores"], r_texts, r_cos)][:o.examples]
    for key in ("token_f1", "bleu", "exact_match", "round_trip_cosine"):
        result[key] = result["exact"]["learned"][key]
    result["examples"] = examples
    return result


def format_table(result: dict) -> str:
    """Markdown table: learned (per correction step) vs retrieval, per condition."""
    lines = ["| vectors | decoder | token F1 | BLEU | exact | round-trip cos |", "|---|---|---|---|---|---|"]
    for name in [k for k in result if isinstance(result[k], dict) and "learned" in result[k]]:
        block = result[name]
        for s, m in enumerate(block["learned"]["per_step"]):
            lines.append(f"| {name} | learned, {s} corr. | {m['token_f1']:.3f} | {m['bleu']:.1f} | {m['exact_match']:.3f} | "
                         f"{m['round_trip_cosine']:.3f} |")
        m = block["retrieval"]
        lines.append(f"| {name} | retrieval ({result['retrieval_bank']}) | {m['token_f1']:.3f} | {m['bleu']:.1f} | "
                     f"{m['exact_match']:.3f} | {m['round_trip_cosine']:.3f} |")
    return "\n".join(lines)
