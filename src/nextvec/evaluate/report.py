"""`write_report`: one Markdown + standalone HTML report of a run, with PNG plots.

Training curves (every logged term and every val metric from RUN/metrics.jsonl), the evaluate table
(model beside every baseline), the collapse diagnosis with its std-ratio histogram, and example
predictions decoded by retrieval beside the true next sentence.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

import numpy as np

from nextvec.extras import require
from nextvec.options import ReportOptions
from nextvec.run.folder import read_metrics_lines

_SKIP_CURVES = ("step", "epoch")


def read_metrics(run_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """RUN/metrics.jsonl -> (train records, val records); val records are those with "val/..." keys."""
    train, val = [], []
    for rec in read_metrics_lines(run_dir):
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


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend."""
    require("matplotlib", "report", "plotting").use("Agg")
    return require("matplotlib.pyplot", "report", "plotting")


def plot_training_curves(run_dir: str | Path, path: str | Path) -> Path | None:
    """One panel per logged train term (raw and smoothed) and per val metric. None without metrics."""
    train, val = read_metrics(run_dir)
    panels = [(k, s, v, "train") for k, (s, v) in _series(train).items()]
    panels += [(k, s, v, "val") for k, (s, v) in _series(val).items()]
    if not panels:
        return None
    plt = _pyplot()

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
    return _save(plt, fig, path)


def plot_rollout(rollout: dict, path: str | Path) -> Path:
    """Two panels against the horizon h: topic retention (the real continuation's too) and the energy score
    of each predictor's rollouts as a ratio to the kNN walk's."""
    from nextvec.evaluate.rollout import energy_ratios

    plt = _pyplot()
    hs = np.arange(1, rollout["horizon"] + 1)
    fig, (ret, es) = plt.subplots(1, 2, figsize=(10, 3.4))
    ret.plot(hs, rollout["real"]["retention"], color="black", lw=2, label="real continuation")
    for name, p in rollout["predictors"].items():
        ret.plot(hs, p["retention"], marker="o", ms=3, label=name)
    for name, r in energy_ratios(rollout).items():
        es.plot(hs, r, marker="o", ms=3, label=name)
    ret.set_title("topic retention: cosine of step h to the prompt's centroid", fontsize=9)
    es.set_title(f"energy score at step h / the {rollout.get('reference')}'s (lower is better)", fontsize=9)
    for ax in (ret, es):
        ax.set_xlabel("step h", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(plt, fig, path)


def _save(plt, fig, path: str | Path) -> Path:
    """Lay out, write as a 110-dpi PNG, close; -> the path."""
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_std_ratio_hist(per_dim, path: str | Path, title: str = "per-dimension std ratio y_dec / target") -> Path:
    """Histogram of per-dimension std ratios (NaN = constant target dims, left out), healthy band shaded."""
    plt = _pyplot()

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
    return _save(plt, fig, path)


def example_predictions(model, store, split: str = "test", context_length: int = 5, n: int = 10, seed: int = 0,
                        decoder=None) -> list[dict]:
    """`n` random windows of a split: context texts, true next text, and y_dec decoded by retrieval."""
    from nextvec.data.windows import context_indices, window_targets
    from nextvec.evaluate.diagnostics import retrieval_decoder
    from nextvec.models.base import predict_windows
    from nextvec.vecmath import cosine_rows

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


# ---- the report as a list of blocks (dicts with a "kind"): written as Markdown here, as HTML by the template

def _b(kind: str, **fields) -> dict:
    return {"kind": kind, **fields}


def _table_cells(markdown: str) -> tuple[list[str], list[list[str]]]:
    """A Markdown table made by format_table -> (head, rows); cells keep their **bold** markers."""
    lines = [ln.strip().strip("|").split(" | ") for ln in markdown.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln] for ln in lines]
    return cells[0], cells[2:]


def _md_cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _md_block(b: dict) -> str:
    kind = b["kind"]
    if kind in ("h1", "h2"):
        return ("# " if kind == "h1" else "## ") + b["text"]
    if kind == "p":
        return f"**{b['text']}**" if b.get("bold") else b["text"]
    if kind == "pre":
        return "```\n" + b["text"] + "\n```"
    if kind == "table":
        lines = ["| " + " | ".join(map(_md_cell, b["head"])) + " |", "|" + "---|" * len(b["head"])]
        return "\n".join(lines + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in b["rows"]])
    if kind == "img":
        return f"![{b['alt']}]({b['src']})"
    items = []  # examples
    for i, ex in enumerate(b["examples"], 1):
        ctx = " / ".join(ex["context"][-2:])
        items.append(f"{i}. **context** (last {min(2, len(ex['context']))} of {len(ex['context'])}): {ctx}\n"
                     f"   - **true next**: {ex['true']}\n"
                     f"   - **predicted** (retrieval, score {ex['decoded_score']:.3f}; cos(y, true) "
                     f"{ex['cosine']:.3f}): {ex['predicted']}")
    return "\n".join(items)


def _render_md(blocks: list[dict]) -> str:
    return "\n\n".join(map(_md_block, blocks)) + "\n"


def _render_html(blocks: list[dict], out_dir: Path, title: str) -> str:
    """templates/report.html.j2 over the blocks, autoescaped; the PNGs embedded as data URIs."""
    jinja2 = require("jinja2", "report", "the HTML report")
    env = jinja2.Environment(loader=jinja2.PackageLoader("nextvec.evaluate", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    images = {b["src"]: base64.b64encode((out_dir / b["src"]).read_bytes()).decode("ascii")
              for b in blocks if b["kind"] == "img"}
    return env.get_template("report.html.j2").render(title=title, blocks=blocks, images=images)


def _fmt(v, nd=3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _header_blocks(run: Path, model, meta: dict, store, evaluation: dict, split: str, ckpt: str, T: int) -> list[dict]:
    mc = meta.get("model_config", {})
    return [
        _b("h1", text=f"nextvec report: {run.name}"),
        _b("table", head=["", ""], rows=[
            ["model", f"{mc.get('name', getattr(model, 'name', '?'))} (hidden {mc.get('hidden_dim', '?')}, "
                      f"{mc.get('num_layers', '?')} layers, prior {mc.get('residual_prior', '?')}, "
                      f"{meta.get('params', '?')} parameters)"],
            ["checkpoint", f"{ckpt} (step {meta.get('step')})"],
            ["store", f"{store.root} ({len(store)} chunks, {store.dim}-d, encoder {store.fingerprint.get('name')})"],
            ["split", f"{split}: {evaluation['windows']} windows, bank of {evaluation['bank_size']} chunks"],
            ["context length", str(T)],
        ]),
    ]


def _training_blocks(run: Path, curves: Path | None) -> list[dict]:
    blocks = [_b("h2", text="Training curves")]
    if curves is None:
        return blocks + [_b("p", text=f"No training log: {run / 'metrics.jsonl'} was not found.")]
    train_recs, val_recs = read_metrics(run)
    last = train_recs[-1] if train_recs else {}
    rows = [[k, _fmt(v, 4)] for k, v in last.items() if k not in _SKIP_CURVES and isinstance(v, (int, float))]
    if val_recs:
        rows += [[k, _fmt(v, 4)] for k, v in val_recs[-1].items() if k.startswith("val/")]
    return blocks + [
        _b("img", src=curves.name, alt="training curves"),
        _b("p", text=f"Last logged values (train step {last.get('step')}, "
                     f"val step {val_recs[-1]['step'] if val_recs else 'n/a'}):"),
        _b("table", head=["term", "value"], rows=rows),
    ]


def _diagnosis_blocks(diagnosis: dict, hist: Path) -> list[dict]:
    d = diagnosis
    blocks = [
        _b("h2", text="Collapse diagnosis"),
        _b("p", text=f"Verdict: {d['verdict']}", bold=True),
        _b("table", head=["check", "value", "thresholds", "status", "meaning"],
           rows=[[c["check"], _fmt(c["value"]), c["thresholds"], c["status"], c["message"]] for c in d["checks"]]),
        _b("table", head=["measure", "predictions", "targets"], rows=[
            ["RankMe (effective rank)", _fmt(d["rankme_pred"], 1), _fmt(d["rankme_target"], 1)],
            ["mean pairwise cosine", _fmt(d["pairwise_cos_pred"]), _fmt(d["pairwise_cos_target"])],
            ["std ratio y_dec median (p10-p90)",
             f"{_fmt(d['std_ratio_median'])} ({_fmt(d['std_ratio_p10'])}-{_fmt(d['std_ratio_p90'])})", "1"],
            ["cosine to target (model) vs cosine of the train mean", _fmt(d["model_cosine"]),
             _fmt(d["mean_baseline_cosine"])],
        ]),
        _b("img", src=hist.name, alt="std ratio histogram"),
    ]
    abc = d.get("abc")
    if abc:
        rows = []
        for t, what in (("A", "decode(encode(x))"), ("B", "decode(L2(encode(x)))"), ("C", "decode(y_dec of the context before x)")):
            r = abc[t]
            rows.append([f"{t}: {what}", _fmt(r["exact_match"]), _fmt(r["token_f1"]), _fmt(r.get("cosine")),
                         _fmt(r.get("true_rank"), 0) if "true_rank" in r else "n/a", _fmt(r.get("r@1"))])
        blocks += [_b("p", text=f"Decoder tests with the {abc['decoder']} on {abc['n']} chunks:"),
                   _b("table", head=["test", "exact match", "token F1", "cosine decoded-true", "median rank of true",
                                     "R@1"], rows=rows)]
    return blocks


def _rollout_blocks(rollout: dict | None, plot: Path | None) -> list[dict]:
    """The multi-step evaluation: its table and plot (nothing when it was not run)."""
    from nextvec.evaluate.rollout import format_rollout

    if not rollout:
        return []
    if "skipped" in rollout:
        return [_b("h2", text="Continuations"), _b("p", text=f"Not evaluated: {rollout['skipped']}")]
    text = format_rollout(rollout)
    head, rows = _table_cells(text)
    return [_b("h2", text="Continuations against the real one"), _b("p", text=text.splitlines()[0]),
            _b("table", head=head, rows=rows), _b("img", src=plot.name, alt="retention and energy score per step")]


def _continuation_blocks(example: dict | None) -> list[dict]:
    """One prompt's generated continuations beside its true one, with topic retention per step."""
    if not example:
        return []
    names = list(example["continuations"])
    rows = []
    for h, true in enumerate(example["true"]):
        row = [str(h + 1), f"{true['text']} ({true['retention']:.2f})"]
        for n in names:
            steps = example["continuations"][n]
            row.append(f"{steps[h]['text']} ({steps[h]['retention']:.2f})" if h < len(steps) else "(stopped)")
        rows.append(row)
    return [_b("h2", text="A generated continuation beside the true one"),
            _b("p", text=f"Prompt ({len(example['prompt'])} sentences of a test document): "
                         + " ".join(example["prompt"])),
            _b("p", text="Each cell: the decoded step (topic retention: cosine of the step's vector to the unit "
                         "centroid of the prompt's vectors)."),
            _b("table", head=["step", "true continuation", *names], rows=rows)]


def write_report(session, options: ReportOptions | None = None, evaluation: dict | None = None,
                 diagnosis: dict | None = None, continuation: dict | None = None) -> Path:
    """Evaluate and diagnose the session's model, plot, and write report.md + report.html (+ PNGs, JSON).

    Args:
        session: an opened run; its run folder gives the training curves (none for a bare checkpoint file).
        options: ReportOptions (out folder, split, windows, examples, seed).
        evaluation, diagnosis: precomputed results of evaluate_run / diagnose_run to reuse (an evaluation
            with a `rollout` section adds the continuation table and plot).
        continuation: one prompt's generated continuations beside its true one ({prompt, true,
            continuations: {name: [{text, retention}]}}, as `nextvec demo` writes it), shown as a table.
    Returns the path of report.md.
    """
    from nextvec.evaluate import write_json
    from nextvec.evaluate.diagnostics import diagnose_run
    from nextvec.evaluate.runner import evaluate_run, format_summary, format_table
    from nextvec.options import DiagnoseOptions, EvaluateOptions

    o = options or ReportOptions()
    model, meta, store, split, seed = session.model, session.meta, session.store, o.split, o.seed
    run = Path(meta.get("run_dir") or session.run_dir or Path(session.checkpoint).parent)
    out = o.out if o.out is not None else run / "report"
    out.mkdir(parents=True, exist_ok=True)
    T = session.window
    ckpt = session.checkpoint
    if evaluation is None:
        evaluation = evaluate_run(session, EvaluateOptions(split=split, max_windows=o.max_windows, seed=seed))
    if diagnosis is None:
        diagnosis = diagnose_run(session, DiagnoseOptions(split=split, max_windows=o.max_windows, seed=seed))
    write_json(evaluation, out / "evaluate.json")
    write_json(diagnosis, out / "diagnose.json")
    curves = plot_training_curves(run, out / "training_curves.png")
    hist = plot_std_ratio_hist(diagnosis["std_ratio_per_dim"], out / "std_ratio_hist.png")
    examples = example_predictions(model, store, split, T, n=o.examples, seed=seed)
    rollout = evaluation.get("rollout")
    ro_plot = plot_rollout(rollout, out / "rollout.png") if rollout and "skipped" not in rollout else None

    head, rows = _table_cells(format_table(evaluation))
    blocks = [
        *_header_blocks(run, model, meta, store, evaluation, split, ckpt, T),
        *_training_blocks(run, curves),
        _b("h2", text=f"Evaluation on {split}"),
        _b("pre", text=format_summary(evaluation)),
        _b("table", head=head, rows=rows),
        *_rollout_blocks(rollout, ro_plot),
        *_continuation_blocks(continuation),
        *_diagnosis_blocks(diagnosis, hist),
        _b("h2", text=f"{len(examples)} example predictions ({split}, decoded by retrieval)"),
        _b("examples", examples=examples),
    ]
    md_path = out / "report.md"
    md_path.write_text(_render_md(blocks))
    (out / "report.html").write_text(_render_html(blocks, out, f"nextvec report: {run.name}"))
    return md_path
