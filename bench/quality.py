"""The table that settles issue 6: every baseline and every model family on the TEST split of each corpus.

    python bench/quality.py --store wiki=stores/wiki --store linux-doc=stores/linux-doc \
        [--minutes 10] [--families default,gru,lstm,transformer,amn] [--threads 2] [--out bench/quality.json] \
        [--variant NAME=section.key=value,section.key=value ...]

`default` is `nextvec train STORE` with no model or loss option (the recipe in configs/default.toml,
an AMN); each family `F` is the same recipe with `model.name=F`; `gru-plain` is a GRU as the earlier
system trained it (no prior, one head, MSE + cosine). Every run gets `train.max_minutes` as its only
other override. Baselines (global mean, copy-last, linear average, kNN-successor) are evaluated on the
same windows and bank. Selection happens on val inside the trainer; the test split is only read here.
`--variant` adds a row for the default recipe with extra overrides (also list NAME in --families), e.g.
`ctx16=model.context_length=16`, `n1000=train.train_windows=1000`, or `ft=train.init_from=RUN` (fine-tuned
from a run pre-trained on another store). Baselines are evaluated at every context length a row uses,
and each row is compared with the baselines at its own context length.
With `train.memory` on (the default) each run's successor memory is fitted on val, as `nextvec train`
does, and a `+ memory` row follows the model's (y_dec, hence std ratio and RankMe, is the model's).
Prints one Markdown table per corpus, saves JSON, and ends with the best model's gain per corpus.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from nextvec.config import LVMConfig, load_config
from nextvec.evaluate import evaluate_run, write_json
from nextvec.options import EvaluateOptions
from nextvec.session import Session
from nextvec.models.memory_fit import fit_memory
from nextvec.run.folder import save_memory
from nextvec.models import MODELS
from nextvec.models.memory import MemoryPredictor, SuccessorMemory
from nextvec.store import open_store
from nextvec.run.checkpoint import load_model
from nextvec.train.loop import train

# A plain recurrent model as the earlier LVM system trained it: no prior, one head, MSE + cosine only.
VARIANTS = {"gru-plain": ["model.name=gru", "model.residual_prior=none", "model.separate_cos_head=false",
                          "model.hidden_dim=512", "loss.moment=0", "loss.variance=0"]}
COLS = ("cosine", "r@1", "r@10", "mrr", "in_doc_mrr", "margin", "std_ratio")


def row_md(name: str, r: dict, train_s) -> str:
    rank = f"{r['rankme_pred']:.0f}/{r['rankme_target']:.0f}" if r.get("rankme_pred") is not None else ""
    cells = [f"{r[c]:.3f}" if isinstance(r.get(c), float) else "" for c in COLS]
    return f"| {name} | " + " | ".join(cells) + f" | {rank} | {train_s} |"


def best_of(rows: dict, metric: str) -> tuple[str, dict]:
    """(name, row) of the baseline with the highest `metric`."""
    return max(rows.items(), key=lambda kv: kv[1][metric])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", required=True, help="NAME=PATH of a concept store")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--families", default="default,gru,lstm,transformer,gru-plain",
                    help=f"default (= amn), {', '.join(MODELS)}, gru-plain")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--out", default="bench/quality.json")
    ap.add_argument("--runs", default=None, help="folder for the run folders (default: a temp dir)")
    ap.add_argument("--variant", action="append", default=[], help="NAME=section.key=value[,section.key=value...]")
    args = ap.parse_args()
    for v in args.variant:
        name, _, sets = v.partition("=")
        VARIANTS[name] = [x for x in sets.split(",") if x]
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="nextvec-quality-"))
    results, gains = {}, []
    for spec in args.store:
        corpus, _, path = spec.partition("=")
        store = open_store(path)
        table, best_model = [], None
        baselines_at = {}  # context length -> baseline rows on the same windows and bank
        for fam in args.families.split(","):
            overrides = [f"train.max_minutes={args.minutes}", "train.progress=false"]
            if args.threads:
                overrides.append(f"train.threads={args.threads}")
            if fam in VARIANTS:
                overrides += VARIANTS[fam]
            elif fam != "default":
                overrides.append(f"model.name={fam}")
            cfg = load_config(LVMConfig, None, overrides)
            run_dir = runs / f"{corpus}-{fam}"
            t = time.perf_counter()
            summary = train(path, cfg, run_dir)
            train_s = round(time.perf_counter() - t)
            model, meta = load_model(run_dir, expected_fingerprint=store.fingerprint)
            T = int(meta["context_length"])
            extra, fit = {}, None
            if cfg.train.memory:  # as `nextvec train` does: fit the successor memory's gate on val
                t = time.perf_counter()
                memory = SuccessorMemory(store)
                fit = fit_memory(model, store, T, memory=memory)
                save_memory(run_dir, fit)
                fit_s = round(time.perf_counter() - t)
                if fit["weight"]:
                    extra["model+memory"] = MemoryPredictor(model, memory, fit["weight"], fit["threshold"])
            res = evaluate_run(Session.assemble(model, meta, store), EvaluateOptions(baselines=T not in baselines_at, rollout=0),
                               extra=extra)
            rows = {r["name"]: r for r in res["rows"]}
            if T not in baselines_at:
                baselines_at[T] = {k: v for k, v in rows.items() if not k.startswith("model")}
                header = (res["windows"], res["bank_size"])
            label = f"{fam} ({cfg.model.name}, {summary['steps']} steps)" if fam == "default" else f"{fam} ({summary['steps']} steps)"
            entries = [(label, {**rows["model"], "context_length": T}, train_s)]
            if "model+memory" in rows:
                entries.append((f"{fam} + memory (w {fit['weight']:g}, t {fit['threshold']:g})",
                                {**rows["model+memory"], "context_length": T}, train_s + fit_s))
            results.setdefault(corpus, {})[fam] = {"row": entries[0][1], "summary": summary, "train_s": train_s,
                                                   "memory": fit, "memory_row": entries[1][1] if len(entries) > 1 else None}
            for lab, m, secs in entries:
                table.append((lab, m, secs))
                gain = m["cosine"] - best_of(baselines_at[T], "cosine")[1]["cosine"]
                if best_model is None or gain > best_model[2]:
                    best_model = (lab, m, gain)
        T0 = min(baselines_at)
        baseline_rows = baselines_at[T0]
        results[corpus]["baselines"] = baseline_rows
        results[corpus]["baselines_at"] = {str(k): v for k, v in baselines_at.items()}
        best_base, best_mrr_base = best_of(baseline_rows, "cosine"), best_of(baseline_rows, "mrr")
        print(f"\n### {corpus}: test split, {header[0]} windows, bank {header[1]} chunks, "
              f"budget {args.minutes} min per model\n")
        print("| predictor | cosine | R@1 | R@10 | MRR | in-doc MRR | margin | std ratio y_dec | RankMe pred/target | train s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for T, rows_T in sorted(baselines_at.items()):
            for name, r in rows_T.items():
                print(row_md(name if T == T0 else f"{name} (context {T})", r, ""))
        for label, m, train_s in table:
            print(row_md(label, m, train_s))
        for label, m, _ in table:
            if m["context_length"] != T0 or len(baselines_at) > 1:
                b = baselines_at[m["context_length"]]
                bc, bm = best_of(b, "cosine"), best_of(b, "mrr")
                print(f"{label} vs the baselines at context {m['context_length']}: cosine {m['cosine'] - bc[1]['cosine']:+.3f} "
                      f"over {bc[0]}, MRR x{m['mrr'] / bm[1]['mrr']:.2f} of {bm[0]}")
        d = results[corpus].get("default", {})
        for what, default in (("default recipe, model alone", d.get("row")), ("default recipe (model + memory)", d.get("memory_row"))):
            if default is not None:
                print(f"\n{what} vs best baselines: cosine {default['cosine']:.3f} vs {best_base[1]['cosine']:.3f} "
                      f"({best_base[0]}) = {default['cosine'] - best_base[1]['cosine']:+.3f}; MRR {default['mrr']:.3f} vs "
                      f"{best_mrr_base[1]['mrr']:.3f} ({best_mrr_base[0]}) = x{default['mrr'] / best_mrr_base[1]['mrr']:.2f}; "
                      f"std ratio {default['std_ratio']:.3f}; RankMe {default['rankme_pred'] / default['rankme_target']:.2f} of the targets'")
        bb = best_of(baselines_at[best_model[1]["context_length"]], "cosine")
        gains.append(f"{corpus}: best model {best_model[0]} cosine {best_model[1]['cosine']:.3f}, "
                     f"best baseline {bb[0]} {bb[1]['cosine']:.3f}, gain {best_model[2]:+.3f}")
    write_json(results, args.out)
    print(f"\nsaved {args.out}")
    print("gain of the best model over the best baseline (cosine) -- " + "; ".join(gains))


if __name__ == "__main__":
    main()
