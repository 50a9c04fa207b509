"""`write_report`: one Markdown + standalone HTML report of a run, with PNG plots.

Training curves (every logged term and every val metric from RUN/metrics.jsonl), the evaluate table
(model beside every baseline), the collapse diagnosis with its std-ratio histogram, and example
predictions decoded by retrieval beside the true next sentence.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

import numpy as np

from nextvec.errors import NextvecError

_SKIP_CURVES = ("step", "epoch")


def read_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """RUN/metrics.jsonl -> (train records, val records); val records are those with "val/..." keys."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return [], []
    train, val = [], []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise NextvecError(f"{path} line {n} is not JSON ({e})") from e
        (val if any(k.startswith("val/") for k in rec) else train).append(rec)
    return train, val


def _series(records: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    keys = []
    for r in records:
        keys += [k for k, v in r.items() if k not in _SKIP_CURVES and k not in keys and isinstance(v, (int, float))]
    out = {}
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if isinstance(r.get(k), (int, float)) and r[k] is not None
               and math.isfinite(r[k])]
        if pts:
            s, v = zip(*pts)
            out[k] = (np.asarray(s), np.asarray(v, dtype=np.float64))
    return out


def plot_training_curves(run_dir: str | Path, path: str | Path) -> Path | None:
    """One panel per logged train term (raw and smoothed) and per val metric. None without metrics."""
    train, val = read_metrics(run_dir)
    panels = [(k, s, v, "train") for k, (s, v) in _series(train).items()]
    panels += [(k, s, v, "val") for k, (s, v) in _series(val).items()]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = 3
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False)
    for ax, (name, steps, vals, kind) in zip(axes.flat, panels):
        if kind == "train":
            w = max(1, len(vals) // 50)
            ax.plot(steps, vals, lw=0.6 if w > 1 else 1.2, alpha=0.4 if w > 1 else 1.0, color="tab:blue")
            if w > 1:  # moving average over ~2% of the run
                sm = np.convolve(vals, np.ones(w) / w, mode="valid")
                ax.plot(steps[w - 1:], sm, lw=1.4, color="tab:blue")
        else:
            ax.plot(steps, vals, marker="o", ms=3, lw=1.2, color="tab:orange")
        if (vals > 0).all() and vals.max() > 100 * vals.min():  # terms spanning decades read better on a log axis
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_std_ratio_hist(per_dim, path: str | Path, title: str = "per-dimension std ratio y_dec / target") -> Path:
    """Histogram of per-dimension std ratios (NaN = constant target dims, left out), healthy band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nextvec.evaluate.diagnostics import THRESHOLDS

    r = np.asarray([np.nan if v is None else v for v in per_dim], dtype=np.float64)
    r = r[np.isfinite(r)]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    lo, hi = THRESHOLDS["std_ratio"]["healthy"]
    ax.axvspan(lo, hi, color="tab:green", alpha=0.12, label=f"healthy {lo}-{hi}")
    ax.axvline(THRESHOLDS["std_ratio"]["collapsed_below"], color="tab:red", ls="--", lw=1, label="collapse threshold")
    if len(r):
        ax.hist(r, bins=min(60, max(10, len(r) // 4)), color="tab:blue", alpha=0.8)
        ax.axvline(float(np.median(r)), color="k", lw=1.2, label=f"median {np.median(r):.2f}")
    ax.set_xlabel("std(prediction) / std(target) per dimension")
    ax.set_ylabel("dimensions")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def example_predictions(model, store, split: str = "test", context_length: int = 5, n: int = 10, seed: int = 0,
                        decoder=None) -> list[dict]:
    """`n` random windows of a split: context texts, true next text, and y_dec decoded by retrieval."""
    from nextvec.data.windows import context_indices, window_targets
    from nextvec.evaluate.diagnostics import retrieval_decoder
    from nextvec.evaluate.metrics import cosine_rows, predict_windows

    targets = window_targets(store, split)
    if len(targets) == 0:
        return []
    pick = np.sort(np.random.default_rng(seed).choice(targets, size=min(n, len(targets)), replace=False))
    y_dec, y_cos, _ = predict_windows({"model": model}, store, pick, context_length)["model"]
    decoder = retrieval_decoder(store) if decoder is None else decoder
    decoded = decoder.decode(y_dec, k=1)
    idx, mask = context_indices(store, pick, context_length)
    cos = cosine_rows(y_cos, store.get(pick))
    out = []
    for i, t in enumerate(pick):
        out.append({
            "target_id": int(t),
            "context": store.texts(idx[i][mask[i]]),
            "true": store.text(int(t)),
            "predicted": decoded[i][0][0] if decoded[i] else "",
            "decoded_score": float(decoded[i][0][1]) if decoded[i] else float("nan"),
            "cosine": float(cos[i]),
        })
    return out


# ---- a tiny document model rendered to both Markdown and HTML

def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _render_md(blocks: list[tuple]) -> str:
    out = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + b[1])
        elif kind == "p":
            out.append(b[1])
        elif kind == "pre":
            out.append("```\n" + b[1] + "\n```")
        elif kind == "md":
            out.append(b[1])
        elif kind == "table":
            head, rows = b[1], b[2]
            lines = ["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{b[2]}]({b[1]})")
        elif kind == "examples":
            items = []
            for i, ex in enumerate(b[1], 1):
                ctx = " / ".join(ex["context"][-2:])
                items.append(f"{i}. **context** (last {min(2, len(ex['context']))} of {len(ex['context'])}): {ctx}\n"
                             f"   - **true next**: {ex['true']}\n"
                             f"   - **predicted** (retrieval, score {ex['decoded_score']:.3f}; cos(y, true) "
                             f"{ex['cosine']:.3f}): {ex['predicted']}")
            out.append("\n".join(items))
    return "\n\n".join(out) + "\n"


def _md_inline_to_html(text: str) -> str:
    # only the bold markers our tables use
    s = html.escape(text)
    parts = s.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))


def _render_html(blocks: list[tuple], out_dir: Path, title: str) -> str:
    body = []
    for b in blocks:
        kind = b[0]
        if kind in ("h1", "h2"):
            body.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_md_inline_to_html(b[1])}</p>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "md":  # a Markdown table made by format_table
            lines = [ln for ln in b[1].splitlines() if ln.startswith("|")]
            cells = [[c.strip() for c in ln.strip().strip("|").split(" | ")] for ln in lines]
            rows = [cells[0]] + cells[2:]
            body.append(_html_table(rows[0], rows[1:], inline_md=True))
        elif kind == "table":
            body.append(_html_table(b[1], b[2]))
        elif kind == "img":
            data = base64.b64encode((out_dir / b[1]).read_bytes()).decode("ascii")
            body.append(f'<img alt="{html.escape(b[2])}" src="data:image/png;base64,{data}">')
        elif kind == "examples":
            items = []
            for ex in b[1]:
                ctx = "<br>".join(html.escape(c) for c in ex["context"][-2:])
                items.append(f"<li><div class='ctx'>{ctx}</div><div><b>true next:</b> {html.escape(ex['true'])}</div>"
                             f"<div><b>predicted</b> (retrieval, score {ex['decoded_score']:.3f}; cos(y, true) "
                             f"{ex['cosine']:.3f}): {html.escape(ex['predicted'])}</div></li>")
            body.append("<ol>" + "".join(items) + "</ol>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
             "pre{background:#f6f6f6;padding:0.8em;white-space:pre-wrap}.ctx{color:#666;font-size:0.9em}li{margin:0.8em 0}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def _html_table(head, rows, inline_md: bool = False) -> str:
    cell = _md_inline_to_html if inline_md else (lambda x: html.escape(str(x)))
    h = "".join(f"<th>{cell(str(c))}</th>" for c in head)
    r = "".join("<tr>" + "".join(f"<td>{cell(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{r}</tbody></table>"


def _fmt(v, nd=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def write_report(run_dir: str | Path, store, out_dir: str | Path | None = None, split: str = "test",
                 max_windows: int | None = None, n_examples: int = 10, n_decode: int = 500, seed: int = 0,
                 evaluation: dict | None = None, diagnosis: dict | None = None) -> Path:
    """Evaluate and diagnose the run's model, plot, and write report.md + report.html (+ PNGs, JSON).

    Args:
        run_dir: a run folder (or a checkpoint file; then no training curves).
        store: a ConceptStore or its path (made by the same encoder as the run's training store).
        out_dir: where to write; default RUN/report.
        evaluation, diagnosis: precomputed results of evaluate_run / diagnose_run to reuse.
    Returns the path of report.md.
    """
    from nextvec.evaluate import write_json
    from nextvec.evaluate.diagnostics import diagnose_run
    from nextvec.evaluate.runner import evaluate_run, format_summary, format_table
    from nextvec.store import ConceptStore
    from nextvec.train.checkpoint import load_model

    if not isinstance(store, ConceptStore):
        store = ConceptStore(store)
    model, meta = load_model(run_dir, expected_fingerprint=store.fingerprint)
    run = Path(meta.get("run_dir") or run_dir)
    out = Path(out_dir) if out_dir is not None else run / "report"
    out.mkdir(parents=True, exist_ok=True)
    T = int(meta.get("context_length") or 5)
    ckpt = meta.get("path", str(run_dir))
    if evaluation is None:
        evaluation = evaluate_run(model, store, split, context_length=T, max_windows=max_windows, seed=seed,
                                  meta=meta, checkpoint=ckpt)
    if diagnosis is None:
        diagnosis = diagnose_run(model, store, split, context_length=T, max_windows=max_windows, n_decode=n_decode,
                                 seed=seed, meta=meta, checkpoint=ckpt)
    write_json(evaluation, out / "evaluate.json")
    write_json(diagnosis, out / "diagnose.json")
    curves = plot_training_curves(run, out / "training_curves.png")
    plot_std_ratio_hist(diagnosis["std_ratio_per_dim"], out / "std_ratio_hist.png")
    examples = example_predictions(model, store, split, T, n=n_examples, seed=seed)

    mc = meta.get("model_config", {})
    blocks: list[tuple] = [
        ("h1", f"nextvec report: {run.name}"),
        ("table", ["", ""], [
            ["model", f"{mc.get('name', getattr(model, 'name', '?'))} (hidden {mc.get('hidden_dim', '?')}, "
                      f"{mc.get('num_layers', '?')} layers, prior {mc.get('residual_prior', '?')}, "
                      f"{meta.get('params', '?')} parameters)"],
            ["checkpoint", f"{ckpt} (step {meta.get('step')})"],
            ["store", f"{store.root} ({len(store)} chunks, {store.dim}-d, encoder {store.fingerprint.get('name')})"],
            ["split", f"{split}: {evaluation['windows']} windows, bank of {evaluation['bank_size']} chunks"],
            ["context length", str(T)],
        ]),
        ("h2", "Training curves"),
    ]
    train_recs, val_recs = read_metrics(run)
    if curves is None:
        blocks.append(("p", f"No training log: {run / 'metrics.jsonl'} was not found."))
    else:
        blocks.append(("img", curves.name, "training curves"))
        last = train_recs[-1] if train_recs else {}
        rows = [[k, _fmt(v, 4)] for k, v in last.items() if k not in _SKIP_CURVES and isinstance(v, (int, float))]
        if val_recs:
            rows += [[k, _fmt(v, 4)] for k, v in val_recs[-1].items() if k.startswith("val/")]
        blocks += [("p", f"Last logged values (train step {last.get('step')}, "
                         f"val step {val_recs[-1]['step'] if val_recs else 'n/a'}):"),
                   ("table", ["term", "value"], rows)]
    blocks += [
        ("h2", f"Evaluation on {split}"),
        ("pre", format_summary(evaluation)),
        ("md", format_table(evaluation)),
        ("h2", "Collapse diagnosis"),
        ("p", f"**Verdict: {diagnosis['verdict']}**"),
        ("table", ["check", "value", "thresholds", "status", "meaning"],
         [[c["check"], _fmt(c["value"]), c["thresholds"], c["status"], c["message"]] for c in diagnosis["checks"]]),
        ("table", ["measure", "predictions", "targets"], [
            ["RankMe (effective rank)", _fmt(diagnosis["rankme_pred"], 1), _fmt(diagnosis["rankme_target"], 1)],
            ["mean pairwise cosine", _fmt(diagnosis["pairwise_cos_pred"]), _fmt(diagnosis["pairwise_cos_target"])],
            ["std ratio y_dec median (p10-p90)",
             f"{_fmt(diagnosis['std_ratio_median'])} ({_fmt(diagnosis['std_ratio_p10'])}-"
             f"{_fmt(diagnosis['std_ratio_p90'])})", "1"],
            ["cosine to target (model) vs cosine of the train mean", _fmt(diagnosis["model_cosine"]),
             _fmt(diagnosis["mean_baseline_cosine"])],
        ]),
        ("img", "std_ratio_hist.png", "std ratio histogram"),
    ]
    abc = diagnosis.get("abc")
    if abc:
        rows = []
        for t, what in (("A", "decode(encode(x))"), ("B", "decode(L2(encode(x)))"), ("C", "decode(y_dec of the context before x)")):
            r = abc[t]
            rows.append([f"{t}: {what}", _fmt(r["exact_match"]), _fmt(r["token_f1"]), _fmt(r.get("cosine")),
                         _fmt(r.get("true_rank"), 0) if "true_rank" in r else "n/a", _fmt(r.get("r@1"))])
        blocks += [("p", f"Decoder tests with the {abc['decoder']} on {abc['n']} chunks:"),
                   ("table", ["test", "exact match", "token F1", "cosine decoded-true", "median rank of true", "R@1"], rows)]
    blocks += [("h2", f"{len(examples)} example predictions ({split}, decoded by retrieval)"), ("examples", examples)]

    md_path = out / "report.md"
    md_path.write_text(_render_md(blocks))
    (out / "report.html").write_text(_render_html(blocks, out, f"nextvec report: {run.name}"))
    return md_path
