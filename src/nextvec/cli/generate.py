"""`nextvec generate`: a thin wrapper over nextvec.generate.generate."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def generate_cmd(
    run: Path = typer.Argument(..., help="a training run folder (best checkpoint) or a checkpoint file"),
    store: Path = typer.Option(..., "--store", help="the concept store the model was trained on"),
    prompt: str = typer.Option(..., "--prompt", help="one or more sentences to continue"),
    steps: int = typer.Option(5, "--steps", min=1, help="sentences to generate at most"),
    stop_cos: float = typer.Option(0.9, "--stop-cos", help="stop when a prediction's cosine to the previous one exceeds this"),
    k: int = typer.Option(1, "--k", min=1, help="candidates shown per step"),
    split: str | None = typer.Option(None, "--split", help="decode only into this split's chunks (train/val/test)"),
    encoder: str = typer.Option("auto", "--encoder", help="'auto' (the store's encoder) or a load_encoder spec"),
    as_json: bool = typer.Option(False, "--json", help="print the full result as JSON"),
    samples: int = typer.Option(0, "--samples", min=0,
                                help="0 = the point rollout; N = N sampled continuations (one draw fed back per step)"),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, help="noise scale of a sampling head (default: the run's)"),
    guidance: float | None = typer.Option(None, "--guidance", min=0.0, help="flow head: classifier-free guidance weight (1 = off)"),
    flow_steps: int | None = typer.Option(None, "--flow-steps", min=1, help="flow head: Euler steps per draw"),
    seed: int = typer.Option(0, "--seed", help="seed of the draws: the same seed gives the same continuations"),
) -> None:
    """Continue a text prompt sentence by sentence.

    Encode it, roll the model forward, decode each step.

    Stops early when a prediction's cosine to the previous one exceeds --stop-cos (Large Concept Model
    criterion); each step prints its retrieval score (cosine to the nearest store chunk).
    """
    from nextvec.decode.nearest import RetrievalDecoder
    from nextvec.errors import NextvecError
    from nextvec.generate import SampleOptions, generate, load_for_generation

    if not prompt.strip():  # refused before the model, store and encoder load
        raise NextvecError("--prompt is empty; give at least one sentence to continue")
    model, st, enc = load_for_generation(run, store, encoder)
    sampling = SampleOptions(samples, temperature, guidance, flow_steps, seed)
    out = generate(model, st, enc, prompt, steps=steps, stop_cos=stop_cos, k=k,
                   decoder=RetrievalDecoder(st, split=split), sampling=sampling)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"prompt ({len(out['prompt_sentences'])} sentences): {' '.join(out['prompt_sentences'])}")
    for i, run_out in enumerate(out.get("rollouts", [out])):
        if samples:
            typer.echo(f"-- sample {i + 1} of {samples} (seed {seed})")
        _print_rollout(run_out)


def _print_rollout(out: dict) -> None:
    for s in out["steps"]:
        cos = "   -  " if s["cos_prev"] is None else f"{s['cos_prev']:6.3f}"
        mark = "" if s["kept"] else "  (dropped: repeats the previous step)"
        typer.echo(f"[{s['step']}] score {s['score']:.3f}  cos_prev {cos}  {s['text']}{mark}")
        for c in s["candidates"][1:]:
            typer.echo(f"      {c['score']:.3f}  {c['text']}")
    typer.echo(f"stopped: {out['stop_reason']} after {out['steps_run']} steps")
    typer.echo(f"continuation: {out['text']}")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate_cmd)
