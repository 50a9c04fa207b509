"""`nextvec evaluate`: the model beside every baseline, same windows, same bank, one table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nextvec.cli.options import flag
from nextvec.options import EvaluateOptions


def evaluate_cmd(
    run: Path = typer.Argument(..., help="Run folder (best checkpoint, else last) or a .safetensors checkpoint."),
    store: Path = typer.Option(..., "--store", help="Concept store made by the same encoder as the run's training store."),
    split: str = flag(EvaluateOptions, "split"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
    baselines: bool = flag(EvaluateOptions, "baselines", "--baselines/--no-baselines"),
    max_windows: Optional[int] = flag(EvaluateOptions, "max_windows"),
    batch_size: int = flag(EvaluateOptions, "batch_size"),
    seed: int = flag(EvaluateOptions, "seed"),
    memory: bool = typer.Option(True, "--memory/--no-memory",
                                help="Also evaluate the model with its successor memory (runs with memory.json)."),
    samples: int = flag(EvaluateOptions, "samples", "--samples", min=0),
    dist_windows: int = flag(EvaluateOptions, "dist_windows", "--dist-windows", min=1),
    rollout: int = flag(EvaluateOptions, "rollout", "--rollout", min=0),
    rollouts: int = flag(EvaluateOptions, "rollouts", "--rollouts", min=1),
    prefix: int = flag(EvaluateOptions, "prefix", "--prefix", min=1),
) -> None:
    """Score a run beside every baseline in one table.

    Cosine, global retrieval (R@1/5/10, MRR over every chunk of the split, context chunks included),
    in-document MRR, contrastive accuracy and next-vs-last margin of the model and of the global-mean,
    copy-last, linear-average and kNN-successor baselines, on the same windows against the same bank; for a
    run with a fitted successor memory (memory.json) also the row "model+memory". With --samples K (default 8)
    every predictor and the two sampler baselines (kNN-successor sampler, model + Gaussian residuals fitted
    on val) draw K samples per window: fair energy score, cosine of one sample / of the mean / best of K,
    and realism beside the real next vectors (pairwise cosine, cosine to the train mean direction and to
    the nearest train chunk, RankMe, Frechet distance). --rollout H (default 10) continues the first --prefix chunks
    of --rollouts held-out documents K times each and scores step h = 1..H against the true chunk h ahead: fair
    energy score (and its ratio to a kNN walk's), topic retention beside the real continuation's, cosine to
    the previous step and repeats, for the model with its memory, the model alone, its point rollout and the
    kNN walk."""
    from nextvec.evaluate import evaluate_run, format_summary, format_table, write_json
    from nextvec.session import Session

    options = EvaluateOptions(split=split, baselines=baselines, max_windows=max_windows, batch_size=batch_size,
                              seed=seed, samples=samples, dist_windows=dist_windows, rollout=rollout,
                              rollouts=rollouts, prefix=prefix)
    res = evaluate_run(Session.open(run, store, encoder=None, memory=memory), options)
    typer.echo(format_summary(res))
    typer.echo("")
    typer.echo(format_table(res))
    if res.get("distribution"):
        from nextvec.evaluate.distribution import format_distribution

        typer.echo(f"\nsamples: K = {samples} per window on {res['distribution']['windows']} windows (unit vectors)")
        typer.echo(format_distribution(res["distribution"]))
    if rollout:
        from nextvec.evaluate.rollout import format_rollout

        typer.echo("")
        typer.echo(f"rollout skipped: {res['rollout']['skipped']}" if "skipped" in res["rollout"]
                   else format_rollout(res["rollout"]))
    if json_path is not None:
        typer.echo(f"results written to {write_json(res, json_path)}")
