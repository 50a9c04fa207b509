"""`nextvec train-decoder` and `nextvec evaluate-decoder`: the learned embedding-to-text decoder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from nextvec.cli.options import flag
from nextvec.extras import require
from nextvec.options import DecoderEvalOptions, DecoderOptions


def train_decoder_cmd(
    store: Path = typer.Argument(..., help="Concept store to train on (train split; val for validation)."),
    out: Path = typer.Option(..., "--out", "-o", help="DECODER folder: config.json, metrics.jsonl, checkpoints/."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML/YAML/JSON with [model] and [train] sections."),
    overrides: list[str] = typer.Option([], "--set", help="Dotted override, e.g. --set train.max_minutes=30 (repeatable)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from DECODER/checkpoints/last.safetensors."),
    extra_store: list[Path] = typer.Option([], "--extra-store", help="Also train on the train split of this store "
                                           "(same encoder; repeatable). Validation stays on STORE."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train a learned vector-to-text decoder.

    Vector -> prefix -> causal LM, for the encoder that made STORE."""
    from nextvec.config import load_config
    from nextvec.decode.learned import LearnedDecoderConfig
    from nextvec.decode.learned_train import train_decoder

    cfg = load_config(LearnedDecoderConfig, config, overrides)
    if extra_store:
        cfg.train.extra_stores = [*cfg.train.extra_stores, *(str(p) for p in extra_store)]
    rec = train_decoder(store, out, cfg, resume=resume, progress=progress)
    typer.echo(json.dumps(rec))
    typer.echo(f"decoder written to {out}")


def evaluate_decoder_cmd(
    decoder: str = typer.Argument(..., help="learned:PATH, PATH a DECODER folder (best checkpoint, else last) or a "
                                  ".safetensors file (the decoder spec of decode, generate and serve)."),
    store: Path = typer.Option(..., "--store", help="Store made by the same encoder as the decoder's training store."),
    split: str = flag(DecoderEvalOptions, "split"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the full results as JSON here."),
    steps: int = flag(DecoderEvalOptions, "steps", "--steps", default=0),
    n: int = flag(DecoderEvalOptions, "n", "--n"),
    run: Optional[Path] = typer.Option(None, "--run", help="LVM run folder: also decode its predicted next vectors."),
    retrieval_split: str = typer.Option("train", help="Bank of the retrieval decoder: train | val | test | all."),
    encoder: str = typer.Option("auto", help="Encoder matching the store: auto (the store's) | minilm | st:PATH | gtr[:PATH]."),
    seed: int = flag(DecoderEvalOptions, "seed"),
    no_repeat_ngram: int = flag(DecoderOptions, "no_repeat_ngram"),
    samples: int = flag(DecoderOptions, "samples", "--samples"),
    device: str = flag(DecoderOptions, "device", "--device"),
) -> None:
    """Score the learned decoder beside the retrieval decoder.

    Token F1, BLEU, exact match and round-trip cosine of the learned decoder beside the retrieval decoder,
    on exact, noised (sigma 0.01, 0.05) and (with --run) model-predicted vectors."""
    require("sacrebleu", "decoder-eval", "nextvec evaluate-decoder")  # BLEU; fail before loading any model
    from nextvec.decode.learned_eval import evaluate_decoder, format_table
    from nextvec.decode.spec import load_decoder, parse_decoder_spec
    from nextvec.errors import NextvecError
    from nextvec.session import Session, open_encoder
    from nextvec.store import open_store

    if parse_decoder_spec(decoder)[0] != "learned":
        raise NextvecError(f"evaluate-decoder measures a learned decoder per correction pass; give learned:PATH, not {decoder!r}")
    st = open_store(store)
    enc = open_encoder(st, encoder)
    options = DecoderOptions(device=device, no_repeat_ngram=no_repeat_ngram, samples=samples, seed=seed)
    dec = load_decoder(decoder, st, enc, options)
    lvm = None if run is None else Session.open(run, st, encoder=None)
    res = evaluate_decoder(dec, st, enc, DecoderEvalOptions(split=split, n=n, steps=steps, seed=seed,
                           retrieval_split=None if retrieval_split == "all" else retrieval_split), run=lvm)
    typer.echo(format_table(res))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(res, indent=2))
        typer.echo(f"results written to {json_path}")
