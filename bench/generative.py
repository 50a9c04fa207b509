"""Issue 14's table: the default (sampling) recipe beside the point recipe and the sampler baselines, on the
TEST split of each corpus, side by side in one run.

    python bench/generative.py --store wiki=stores/wiki --store python-doc=stores/python-doc \
        --store linux-doc=stores/linux-doc [--minutes 10] [--threads 1] [--out bench/generative.json] \
        [--point-set model.head=point] [--rollouts 100]

Per corpus: `nextvec train` with the default recipe (configs/default.toml) and with the point recipe (the
default plus --point-set overrides), each under the same `train.max_minutes`; then on the test split
  - point accuracy (cosine of y_cos) of both,
  - K = 8 samples per window from every predictor: the default recipe, the point recipe (its point 8 times),
    the kNN-successor sampler and point + Gaussian (the point recipe's y_dec plus its val residual
    covariance): fair energy score, cosine of one sample / of the mean of 8, realism beside the real next
    vectors (pairwise cosine, cosine to the train mean direction, RankMe),
  - 10-step rollouts from 5 real sentences of up to 100 test documents: repeat rate and distinct sentences
    (point rollout of the point recipe, sampled rollout of the default recipe),
  - the time to draw 8 vectors for one context (1 thread, median of 200 calls).
and the issue's targets with PASS / FAIL. Each recipe is scored as `nextvec train` leaves it: the model
with its successor memory fitted on val (train.memory = true); the default model alone is a row too.
`--reuse` keeps finished runs of `--runs`. Each run samples at the temperature it was trained with (its
checkpoint's `model.temperature`, printed per corpus); to compare temperatures, train with
`--set model.temperature=T`, so checkpoint selection and the memory's sampling gate see the scored one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nextvec.config import LVMConfig, load_config
from nextvec.evaluate import evaluate_run, write_json
from nextvec.evaluate.memory import fit_run_memory
from nextvec.evaluate.distribution import evaluate_distributions, format_distribution
from nextvec.evaluate.rollout import evaluate_rollouts
from nextvec.data.windows import select_windows
from nextvec.evaluate.runner import sampler_baselines
from nextvec.store import open_store
from nextvec.session import Session
from nextvec.train.loop import train

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


def train_recipe(store_path: str, out: Path, minutes: float, overrides: list[str], reuse: bool) -> dict:
    """Train one recipe (`train.memory` is fitted after training, as `nextvec train` does); with `reuse`, a run
    folder that already holds a finished run is kept as it is."""
    if reuse and (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    cfg = load_config(LVMConfig, DEFAULT_CONFIG, overrides + [f"train.max_minutes={minutes}", "train.progress=false"])
    t0 = time.perf_counter()
    summary = train(store_path, cfg, out)
    summary["wall_s"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def open_recipe(store_path: str, run: Path):
    """(model, model with its successor memory) of a run, as `nextvec train` left it."""
    if not (run / "memory.json").is_file():
        fit_run_memory(store_path, run)
    s = Session.open(run, store_path, encoder="none", memory=True)
    return s.model.eval(), s.predictor


def sample_ms(model, store, T: int, calls: int = 200) -> dict:
    """Median and fastest milliseconds to draw 8 vectors for one context of T real vectors (one thread); the
    fastest call is the cost without preemption by other jobs on the machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx = torch.from_numpy(np.asarray(store.get(slice(0, T)), np.float32))[None]
    mask = torch.ones(1, T, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    times = []
    with torch.no_grad():
        for _ in range(calls):
            t0 = time.perf_counter()
            model.sample(ctx, mask, 8, gen)
            times.append(time.perf_counter() - t0)
    torch.set_num_threads(threads)
    return {"median": 1000 * float(np.median(times)), "min": 1000 * float(np.min(times))}


def bench_corpus(name: str, path: str, runs: Path, args) -> dict:
    store = open_store(path)
    s_def = train_recipe(path, runs / f"{name}-default", args.minutes, [], args.reuse)
    s_pt = train_recipe(path, runs / f"{name}-point", args.minutes, args.point_set, args.reuse)
    default_model, default = open_recipe(path, runs / f"{name}-default")
    point_model, point = open_recipe(path, runs / f"{name}-point")
    T = default_model.config.context_length
    ev = evaluate_run(default, store, "test", extra={"point recipe": point, "default model alone": default_model},
                      samples=0)
    targets, _ = select_windows(store, "test", args.dist_windows, 0)
    predictors = {"default": default, "default model alone": default_model, "point recipe": point,
                  **sampler_baselines(store, point_model, T, seed=0)}
    dist = evaluate_distributions(predictors, store, targets, T)
    ro_def = evaluate_rollouts(default, store, "test", steps=10, prompts=args.rollouts, context_length=T)
    ro_pt = evaluate_rollouts(point, store, "test", steps=10, prompts=args.rollouts, context_length=T)
    return {"corpus": name, "store": path, "temperature": default_model.config.temperature,
            "train": {"default": s_def, "point": s_pt},
            "memory": {r: json.loads((runs / f"{name}-{r}" / "memory.json").read_text()) for r in ("default", "point")},
            "cosine": {r["name"]: r["cosine"] for r in ev["rows"]}, "distribution": dist,
            "rollout": {"default (sampled)": ro_def["modes"]["sampled"], "point recipe (point)": ro_pt["modes"]["point"],
                        "default (point)": ro_def["modes"]["point"], "prompts": ro_def["prompts"]},
            "sample_ms": {"default": sample_ms(default, store, T), "point recipe": sample_ms(point, store, T)}}


def targets(r: dict) -> list[tuple[bool, str]]:
    rows = {x["name"]: x for x in r["distribution"]["rows"]}
    real, d = rows["real next vectors"], rows["default"]
    best_sampler = min(rows["knn_sampler"]["energy_score"], rows["point+gaussian"]["energy_score"])
    cos_d, cos_p = r["cosine"]["model"], r["cosine"]["point recipe"]
    rep_d, rep_p = r["rollout"]["default (sampled)"]["repeat_rate"], r["rollout"]["point recipe (point)"]["repeat_rate"]
    return [
        (d["energy_score"] <= 0.99 * best_sampler,
         f"energy score {d['energy_score']:.4f} <= 0.99 x best sampler baseline {best_sampler:.4f} "
         f"(ratio {d['energy_score'] / best_sampler:.3f})"),
        (cos_d >= cos_p - 0.01, f"point cosine {cos_d:.4f} >= point recipe {cos_p:.4f} - 0.01 "
                                f"(one sample {d['cos_one']:.4f}, mean of 8 {d['cos_mean']:.4f})"),
        (abs(d["pairwise"] - real["pairwise"]) <= 0.05 and abs(d["mean_dir"] - real["mean_dir"]) <= 0.05,
         f"realism: pairwise {d['pairwise']:.3f} vs real {real['pairwise']:.3f}, mean direction "
         f"{d['mean_dir']:.3f} vs {real['mean_dir']:.3f} (each within 0.05)"),
        (d["rankme"] >= 0.8 * real["rankme"], f"RankMe of samples {d['rankme']:.0f} >= 0.8 x {real['rankme']:.0f}"),
        (rep_d <= 0.10, f"10-step rollout repeat rate {rep_d:.1%} <= 10% (point recipe {rep_p:.1%})"),
        (r["sample_ms"]["default"]["median"] < 20,
         f"8 samples for one context in {r['sample_ms']['default']['median']:.1f} ms (median; fastest "
         f"{r['sample_ms']['default']['min']:.1f} ms) < 20 ms"),
        (r["train"]["default"]["wall_s"] <= 660, f"default recipe trained in {r['train']['default']['wall_s']:.0f} s "
                                                 f"(budget 10 min + validation)"),
    ]


def report(r: dict) -> None:
    tr = r["train"]
    print(f"\n## {r['corpus']} (test: {r['distribution']['windows']} windows for samples, "
          f"{r['rollout']['prompts']} rollouts; sampling temperature {r['temperature']})")
    print(f"default: {tr['default']['steps']} steps ({tr['default']['stop_reason']}, {tr['default']['wall_s']:.0f} s); "
          f"point recipe: {tr['point']['steps']} steps ({tr['point']['stop_reason']}, {tr['point']['wall_s']:.0f} s)")
    print("point cosine (y_cos): " + ", ".join(f"{k} {v:.4f}" for k, v in r["cosine"].items()))
    print(format_distribution(r["distribution"]))
    for mode, m in r["rollout"].items():
        if mode != "prompts":
            print(f"rollout {mode}: repeat rate {m['repeat_rate']:.1%}, distinct {m['distinct_per_rollout']:.1f}/10, "
                  f"cos to truth step 1 / 5 / 10: " + " / ".join(f"{m['steps'][i]['cos_truth']:.3f}" for i in (0, 4, 9)))
    print("8 samples for one context, median / fastest of 200 calls: " + ", ".join(
        f"{k} {v['median']:.2f} / {v['min']:.2f} ms" for k, v in r["sample_ms"].items()))
    for ok, text in targets(r):
        print(f"  [{'PASS' if ok else 'FAIL'}] {text}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", action="append", required=True, help="NAME=PATH of a concept store")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for training (0 = torch default)")
    ap.add_argument("--point-set", action="append", default=["model.head=point"],
                    help="overrides that turn the default recipe into the point recipe")
    ap.add_argument("--dist-windows", type=int, default=5000)
    ap.add_argument("--rollouts", type=int, default=100)
    ap.add_argument("--runs", default=None, help="folder for the run folders (default: a temp dir)")
    ap.add_argument("--reuse", action="store_true", help="keep finished runs found in --runs instead of training")
    ap.add_argument("--out", default="bench/generative.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = Path(args.runs or tempfile.mkdtemp(prefix="nextvec-generative-"))
    results = []
    for spec in args.store:
        name, _, path = spec.partition("=")
        results.append(bench_corpus(name, path, runs, args))
        report(results[-1])
        write_json(results, args.out)
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
