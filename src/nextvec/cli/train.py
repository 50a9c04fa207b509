"""`nextvec train`: a thin wrapper over nextvec.train.loop.train."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer


def train_cmd(
    store: Path = typer.Argument(..., help="a concept store made by `nextvec ingest`"),
    out: Path = typer.Option(..., "--out", help="run folder: config.json, metrics.jsonl, checkpoints/"),
    model: str | None = typer.Option(None, "--model", help="gru | lstm | transformer | amn (default: the config's)"),
    config: Path | None = typer.Option(None, "--config", help="TOML/YAML/JSON with model, loss and train sections"),
    overrides: list[str] | None = typer.Option(None, "--set", help="dotted override, e.g. --set train.lr=3e-4"),
    resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its last checkpoint"),
    overfit: int | None = typer.Option(None, "--overfit", help="sanity check: train and validate on N train windows"),
    init: Path | None = typer.Option(None, "--init", help="start from this run's (or checkpoint's) weights: "
                                                        "fine-tune a model pre-trained on another store"),
) -> None:
    """Train a Latent Vector Model on a concept store.

    It predicts the next sentence vector from the ones before it.

    Runs under `torchrun --nproc_per_node N` with DDP (one process per GPU, or gloo on CPU).
    Prints the run summary as JSON.
    """
    from nextvec.config import LVMConfig, load_config
    from nextvec.errors import NextvecError
    from nextvec.train.loop import train
    from nextvec.run.folder import read_run_json

    extra = list(overrides or [])
    if model:
        extra.append(f"model.name={model}")
    if overfit is not None:
        extra.append(f"train.overfit={overfit}")
    if init is not None:
        extra.append(f"train.init_from={init}")
    base = None
    if resume:
        saved = out / "config.json"
        if not saved.is_file():
            raise NextvecError(f"{out} has no config.json to resume; train into it first (without --resume)")
        base = read_run_json(out, "config.json")
    cfg = load_config(LVMConfig, config, extra, base=base)
    summary = train(store, cfg, out, resume=resume)
    if os.environ.get("RANK", "0") == "0":
        typer.echo(json.dumps(summary, indent=2))
        for w in summary.get("warnings", []):
            typer.secho(f"warning: {w}", fg="yellow", err=True)
