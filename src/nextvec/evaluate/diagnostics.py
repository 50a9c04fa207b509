"""`diagnose_run`: the collapse tests in one call, each with a verdict in plain words and its thresholds.

1. moment matching: per-dimension std and mean of predictions (y_dec, y_cos) vs the targets;
2. mean-vector baseline: is the model better than always answering the train mean?
3. decoder A/B/C: A decode(x), B decode(L2(x)), C decode(y_dec for the context before x), where x are
   the stored encoder vectors (what `encode` returned at ingest);
4. collapse metrics: RankMe and mean pairwise cosine of predictions vs targets, per-dim std ratio;
5. samples: K draws per window scored like `evaluate`'s distribution table, and their realism judged
   against the real next vectors' own statistics (a model with a sampling head is judged on its samples).
"""

from __future__ import annotations

import numpy as np

from nextvec.decode.metrics import exact_match, token_f1
from nextvec.evaluate.collapse import mean_pairwise_cosine, moment_matching, rankme, std_ratio
from nextvec.scoring import Bank, retrieval_ranks
from nextvec.models.base import predict_windows
from nextvec.options import DiagnoseOptions
from nextvec.data.windows import select_windows
from nextvec.vecmath import cosine_rows, unit_rows

# Verdict thresholds. A check "fails" (collapse) past `collapsed_*`, "warns" outside `healthy`.
THRESHOLDS = {
    # median over dims of std(y_dec) / std(target); constant target dims excluded
    "std_ratio": {"healthy": (0.8, 1.25), "collapsed_below": 0.5},
    # RankMe(y_dec) / RankMe(targets)
    "rank_ratio": {"healthy_min": 0.5, "collapsed_below": 0.25},
    # (pairwise cos of predictions - of targets) / (1 - pairwise cos of targets): share of the way to identical outputs
    "pairwise_gap": {"healthy_max": 0.25, "collapsed_above": 0.5},
    # share of predictions with cos(y, train mean) > cos(y, target)
    "closer_to_mean": {"healthy_max": 0.5, "collapsed_above": 0.9},
    # model cosine - cosine of the train mean to the targets (a warning only: bad is not the same as collapsed)
    "cosine_gain_over_mean": {"healthy_min": 0.01},
}


def retrieval_decoder(store, split: str | None = None):
    """The retrieval decoder (nearest store chunk by cosine) used by decoder A/B/C and the report."""
    from nextvec.decode.nearest import RetrievalDecoder

    return RetrievalDecoder(store, split=split)


class _TextVectors:
    """Vector of a decoded text: looked up in the store when a chunk has that exact text, else encoded."""

    def __init__(self, store, encoder=None):
        self.store, self.encoder, self._ids = store, encoder, None

    def __call__(self, texts: list[str]) -> np.ndarray | None:
        if self._ids is None:
            self._ids = {}
            for i in range(len(self.store) - 1, -1, -1):  # first occurrence wins
                self._ids[self.store.text(i)] = i
        ids = [self._ids.get(t, -1) for t in texts]
        if all(i >= 0 for i in ids):
            return self.store.get(np.array(ids))
        if self.encoder is None:
            return None
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)


def decoder_abc(store, targets: np.ndarray, y_dec: np.ndarray, decoder=None, encoder=None,
                retrieval: bool | None = None) -> dict:
    """Decoder tests A, B, C on the chunks `targets` (N,) given the model's y_dec (N, D) for their contexts.

    A: decode(encode(x)); B: decode(L2(encode(x))); C: decode(y_dec). encode(x) is the stored vector
    of x unless `encoder` is given, then x's text is encoded afresh. For each: exact match of the decoded text with the
    true chunk text, token F1, and the cosine of the decoded text's vector to x (looked up in the store,
    or encoded when `encoder` is given). C also gets the rank of the true chunk among the decoder's bank
    (retrieval decoders: every chunk of the store) by cosine with y_dec.
    """
    decoder = retrieval_decoder(store) if decoder is None else decoder
    if retrieval is None:  # a retrieval decoder answers store chunks and can say which (search -> ids)
        retrieval = hasattr(decoder, "search") and getattr(decoder, "store", None) is store
    x = store.get(targets)
    truth = store.texts(targets)
    x_enc = x if encoder is None else np.asarray(encoder.encode(truth), dtype=np.float32)  # A: encode(x) afresh
    vec_of = _TextVectors(store, encoder)
    out = {"decoder": type(decoder).__name__, "n": int(len(targets))}
    for test, v in (("A", x_enc), ("B", unit_rows(x_enc)), ("C", np.asarray(y_dec, dtype=np.float32))):
        if retrieval:
            _, ids = decoder.search(v, 1)
            texts = store.texts(ids[:, 0])
            dv = store.get(ids[:, 0])
        else:
            texts = [h[0][0] if h else "" for h in decoder.decode(v, k=1)]
            dv = vec_of(texts)
        res = {"exact_match": float(np.mean([exact_match(a, b) for a, b in zip(texts, truth)])),
               "token_f1": float(np.mean([token_f1(a, b) for a, b in zip(texts, truth)])),
               "cosine": None if dv is None else float(cosine_rows(dv, x).mean())}
        if test == "C" and retrieval:
            rank, _ = retrieval_ranks(v, targets, Bank.for_split(store, getattr(decoder, "split", None)))
            res.update(true_rank=float(np.median(rank)), true_rank_mean=float(rank.mean()),
                       mrr=float((1.0 / rank).mean()), **{"r@1": float((rank <= 1).mean())})
        out[test] = res
    return out


def _check(name: str, value: float, status: str, rule: str, words: str) -> dict:
    return {"check": name, "value": value, "status": status, "thresholds": rule, "message": words}


def collapse_checks(d: dict) -> list[dict]:
    """Verdict per check from the numbers of a diagnosis; status is pass, warn or fail (= collapsed)."""
    th = THRESHOLDS
    out = []
    lo, hi = th["std_ratio"]["healthy"]
    v, cb = d["std_ratio_median"], th["std_ratio"]["collapsed_below"]
    st = "fail" if not np.isfinite(v) or v < cb else "pass" if lo <= v <= hi else "warn"
    out.append(_check("std_ratio", v, st, f"healthy {lo}-{hi}, collapsed < {cb}",
                      {"pass": "spread matches the data", "warn": "spread differs from the data",
                       "fail": "predictions shrunk toward a point"}[st]))
    v, hm, cb = d["rank_ratio"], th["rank_ratio"]["healthy_min"], th["rank_ratio"]["collapsed_below"]
    st = "fail" if v < cb else "pass" if v >= hm else "warn"
    out.append(_check("rank_ratio", v, st, f"healthy >= {hm}, collapsed < {cb}",
                      {"pass": "predictions use most directions the targets use",
                       "warn": "predictions occupy a lower-rank subspace than the targets",
                       "fail": "predictions lie on a few directions"}[st]))
    v, hm, ca = d["pairwise_gap"], th["pairwise_gap"]["healthy_max"], th["pairwise_gap"]["collapsed_above"]
    st = "fail" if v > ca else "pass" if v <= hm else "warn"
    out.append(_check("pairwise_gap", v, st, f"healthy <= {hm}, collapsed > {ca}",
                      {"pass": "predictions differ from each other as much as targets do",
                       "warn": "predictions are more alike than targets", "fail": "predictions are nearly all alike"}[st]))
    v, hm, ca = d["closer_to_mean_fraction"], th["closer_to_mean"]["healthy_max"], th["closer_to_mean"]["collapsed_above"]
    st = "fail" if v > ca else "pass" if v <= hm else "warn"
    out.append(_check("closer_to_mean", v, st, f"healthy <= {hm}, collapsed > {ca}",
                      {"pass": "most predictions are nearer their target than the mean",
                       "warn": "many predictions are nearer the mean than their target",
                       "fail": "predictions sit at the mean"}[st]))
    v, hm = d["model_cosine"] - d["mean_baseline_cosine"], th["cosine_gain_over_mean"]["healthy_min"]
    st = "pass" if v >= hm else "warn"
    out.append(_check("cosine_gain_over_mean", v, st, f"healthy >= {hm} (warning only)",
                      {"pass": "better than always answering the mean", "warn": "no better than always answering the mean"}[st]))
    return out


def verdict(checks: list[dict], d: dict) -> str:
    """One line in plain words, e.g. 'not collapsed: std ratio 0.93, rank 0.71 of targets'."""
    failed = [c["check"] for c in checks if c["status"] == "fail"]
    warned = [c["check"] for c in checks if c["status"] == "warn"]
    nums = (f"std ratio {d['std_ratio_median']:.2f}, rank {d['rank_ratio']:.2f} of targets, "
            f"{d['closer_to_mean_fraction']:.0%} closer to the mean than to the target")
    if failed:
        return f"COLLAPSED ({', '.join(failed)} failed): {nums}"
    if warned:
        return f"not collapsed, with warnings ({', '.join(warned)}): {nums}"
    return f"not collapsed: {nums}"


def diagnose_predictions(y_dec: np.ndarray, y_cos: np.ndarray, target: np.ndarray, mean: np.ndarray) -> dict:
    """Every collapse number and verdict from predictions (N, D) and their targets (N, D)."""
    mm = moment_matching(target, y_dec, y_cos)
    sr = std_ratio(y_dec, target)
    rk_pred, rk_tgt = rankme(y_dec), rankme(target)
    pc_pred, pc_tgt = mean_pairwise_cosine(y_cos), mean_pairwise_cosine(target)
    cos_t = cosine_rows(y_cos, target)
    cos_m = cosine_rows(y_cos, np.broadcast_to(mean, y_cos.shape))
    d = {
        "std_ratio_median": sr["median"], "std_ratio_p10": sr["p10"], "std_ratio_p90": sr["p90"],
        "std_ratio_cos_median": mm["y_cos"]["std_ratio_median"],
        "zero_std_dims": sr["zero_std_dims"],
        "std_ratio_per_dim": sr["per_dim"],
        "moments": {h: {k: v for k, v in mm[h].items() if k != "std_ratio_per_dim"} for h in ("y_dec", "y_cos")},
        "rankme_pred": rk_pred, "rankme_pred_cos": rankme(y_cos), "rankme_target": rk_tgt,
        "rank_ratio": rk_pred / rk_tgt if rk_tgt > 0 else 0.0,
        "pairwise_cos_pred": pc_pred, "pairwise_cos_target": pc_tgt,
        "pairwise_gap": (pc_pred - pc_tgt) / max(1.0 - pc_tgt, 1e-6),
        "mean_baseline_cosine": float(cosine_rows(target, np.broadcast_to(mean, target.shape)).mean()),
        "model_cosine": float(cos_t.mean()),
        "closer_to_mean_fraction": float((cos_m > cos_t).mean()),
    }
    d["checks"] = collapse_checks(d)
    d["collapsed"] = any(c["status"] == "fail" for c in d["checks"])
    d["verdict"] = verdict(d["checks"], d)
    return d


def judge_samples(d: dict, dist: dict, has_sampler: bool) -> None:
    """Add the samples' realism (beside the real next vectors' own statistics) as a check. A model with a
    sampling head is judged on its samples: its point output is the conditional mean by design, so the
    point checks stay as information and the verdict is the samples'."""
    real, row = dist["rows"][0], dist["rows"][1]
    words = {"realistic": "samples look like real next vectors (pairwise and mean-direction cosines within 0.05, "
                          "RankMe >= 0.8 of theirs)",
             "partly realistic": "samples differ from real next vectors in spread or direction",
             "collapsed": "samples huddle together (pairwise gap > 0.5 or RankMe < 0.25 of the real vectors')"}
    st = {"realistic": "pass", "partly realistic": "warn", "collapsed": "fail"}[row["verdict"]]
    gap = (row["pairwise"] - real["pairwise"]) / max(1e-6, 1 - real["pairwise"])
    check = _check("samples_realism", gap, st, "pairwise gap of samples vs real next vectors; see message",
                   words[row["verdict"]])
    d["checks"].append(check)
    d["samples"] = dist
    if has_sampler:
        d["judged_on"] = "samples"
        d["collapsed"] = st == "fail"
        d["verdict"] = (f"{'COLLAPSED' if st == 'fail' else 'not collapsed'} (judged on samples: {row['verdict']}; "
                        f"pairwise {row['pairwise']:.2f} vs real {real['pairwise']:.2f}, RankMe {row['rankme']:.0f} "
                        f"vs {real['rankme']:.0f}); point output: {d['verdict']}")
    else:
        d["judged_on"] = "point"
        d["collapsed"] = d["collapsed"] or st == "fail"
        d["verdict"] = verdict(d["checks"], d)


def diagnose_run(session, options: DiagnoseOptions | None = None) -> dict:
    """All collapse tests of the session's model on a split, decoder A/B/C with the session's decoder
    (retrieval when it has none) and encoder. Returns the JSON of `nextvec diagnose`.

    Keys include std_ratio_median, rankme_pred, rankme_target, pairwise_cos_pred, pairwise_cos_target,
    mean_baseline_cosine, model_cosine, abc (A/B/C on `n_decode` windows), checks, verdict, collapsed and
    thresholds. `std_ratio_per_dim` holds the per-dimension ratios (NaN on constant dimensions).
    """
    o, model, store = options or DiagnoseOptions(), session.model, session.store
    split, seed = o.split, o.seed
    T = session.window
    targets, total = select_windows(store, split, o.max_windows, seed)
    y_dec, y_cos, _ = predict_windows({"model": model}, store, targets, T, o.batch_size)["model"]
    d = diagnose_predictions(y_dec, y_cos, store.get(targets), store.mean)
    if o.samples:
        from nextvec.data.windows import seeded_subset
        from nextvec.evaluate.distribution import evaluate_distributions

        dist = evaluate_distributions({"model": model}, store, seeded_subset(targets, o.sample_windows, seed), T,
                                      o.samples, seed)
        judge_samples(d, dist, getattr(model, "sampler", None) is not None)
    pick = np.sort(np.random.default_rng(seed).choice(len(targets), size=min(o.n_decode, len(targets)), replace=False))
    d["abc"] = decoder_abc(store, targets[pick], y_dec[pick], decoder=session.decoder, encoder=session.encoder)
    d.update(split=split, windows=int(len(targets)), windows_total=int(total), context_length=T,
             model_name=getattr(model, "name", type(model).__name__), store=str(store.root),
             fingerprint=dict(store.fingerprint), checkpoint=session.checkpoint or None, step=session.meta.get("step"),
             thresholds={k: {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in v.items()}
                         for k, v in THRESHOLDS.items()})
    return d


def format_diagnosis(d: dict) -> str:
    """Human-readable report of a diagnosis: numbers, thresholds and the verdict per check."""
    lines = [f"split {d['split']}: {d['windows']} windows, context length {d['context_length']}",
             f"moment matching: std ratio y_dec median {d['std_ratio_median']:.3f} (p10 {d['std_ratio_p10']:.3f}, "
             f"p90 {d['std_ratio_p90']:.3f}; {d['zero_std_dims']} constant target dims left out), "
             f"y_cos median {d['std_ratio_cos_median']:.3f}; mean-vector distance "
             f"{d['moments']['y_dec']['mean_distance']:.3f}",
             f"mean-vector baseline: cos(target, train mean) {d['mean_baseline_cosine']:.3f} vs model "
             f"{d['model_cosine']:.3f}; {d['closer_to_mean_fraction']:.1%} of predictions closer to the mean than "
             "to their target",
             f"RankMe: predictions {d['rankme_pred']:.1f} vs targets {d['rankme_target']:.1f} "
             f"(ratio {d['rank_ratio']:.2f}); mean pairwise cosine: predictions {d['pairwise_cos_pred']:.3f} vs "
             f"targets {d['pairwise_cos_target']:.3f}"]
    abc = d.get("abc")
    if abc:
        what = {"A": "decode(x): the decoder on true vectors", "B": "decode(L2(x)): on unit true vectors",
                "C": "decode(y_dec of the context before x): on the model's predictions"}
        for t in ("A", "B", "C"):
            r = abc[t]
            cos = "n/a" if r.get("cosine") is None else f"{r['cosine']:.3f}"
            extra = (f", true chunk rank median {r['true_rank']:.0f} (mean {r['true_rank_mean']:.1f}, R@1 {r['r@1']:.3f})"
                     if "true_rank" in r else "")
            lines.append(f"decoder {t}, {what[t]} ({abc['decoder']}, {abc['n']} chunks): exact match {r['exact_match']:.3f}, "
                         f"token F1 {r['token_f1']:.3f}, cosine of decoded to true {cos}{extra}")
    if d.get("samples"):
        from nextvec.evaluate.distribution import format_distribution

        lines.append(f"samples (K = {d['samples']['k']} per window, {d['samples']['windows']} windows):")
        lines.append(format_distribution(d["samples"]))
    lines.append("checks:")
    for c in d["checks"]:
        lines.append(f"  [{c['status'].upper():4}] {c['check']} = {c['value']:.3f} ({c['thresholds']}): {c['message']}")
    lines.append(f"verdict: {d['verdict']}")
    return "\n".join(lines)
