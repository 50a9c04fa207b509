"""`nextvec generate`: a thin wrapper over Session.open + nextvec.generate.generate."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from nextvec.cli.options import flag
from nextvec.decode.spec import SPEC_HELP
from nextvec.generate import GenerateOptions, checked_options


def generate_cmd(
    run: Path = typer.Argument(..., help="a training run folder (best checkpoint) or a checkpoint file"),
    store: Path = typer.Option(..., "--store", help="the concept store the model was trained on"),
    prompt: str = typer.Option(..., "--prompt", help="one or more sentences to continue"),
    decoder: str = typer.Option("retrieval", "--decoder", help=SPEC_HELP),
    split: str | None = typer.Option(None, "--split", help="retrieval: decode only into this split's chunks (train/val/test)"),
    encoder: str = typer.Option("auto", "--encoder", help="'auto' (the store's encoder) or a load_encoder spec"),
    as_json: bool = typer.Option(False, "--json", help="print the full result as JSON"),
    memory: bool = typer.Option(True, "--memory/--no-memory",
                                help="predict and sample with the run's fitted successor memory (memory.json), as the "
                                     "default recipe is evaluated"),
    steps: int = flag(GenerateOptions, "steps", "--steps"),
    stop_cos: float = flag(GenerateOptions, "stop_cos", "--stop-cos"),
    k: int = flag(GenerateOptions, "k", "--k"),
    samples: int = flag(GenerateOptions, "samples", "--samples"),
    temperature: float | None = flag(GenerateOptions, "temperature", "--temperature"),
    guidance: float | None = flag(GenerateOptions, "guidance", "--guidance"),
    prompt_guidance: float | None = flag(GenerateOptions, "prompt_guidance", "--prompt-guidance"),
    flow_steps: int | None = flag(GenerateOptions, "flow_steps", "--flow-steps"),
    seed: int = flag(GenerateOptions, "seed", "--seed"),
    no_repeat: bool = flag(GenerateOptions, "no_repeat", "--no-repeat/--allow-repeats"),
) -> None:
    """Continue a text prompt sentence by sentence.

    Encode it, roll the model forward, decode each step.

    Stops early when a prediction's cosine to the previous one exceeds --stop-cos (Large Concept Model
    criterion); each step prints the decoder's score (retrieval: cosine to the nearest store chunk).
    """
    from nextvec.decode.spec import attach_decoder
    from nextvec.options import DecoderOptions
    from nextvec.errors import NextvecError
    from nextvec.generate import generate
    from nextvec.session import Session

    if not prompt.strip():  # refused before the model, store and encoder load
        raise NextvecError("--prompt is empty; give at least one sentence to continue")
    options = checked_options(GenerateOptions, steps=steps, stop_cos=stop_cos, k=k, samples=samples,
                              temperature=temperature, guidance=guidance, prompt_guidance=prompt_guidance,
                              flow_steps=flow_steps, seed=seed,
                              no_repeat=no_repeat)
    session = Session.open(run, store, encoder=encoder, memory=memory)
    attach_decoder(session, decoder, DecoderOptions(split=split))
    out = generate(session, prompt, options)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    typer.echo(f"prompt ({len(out['prompt_sentences'])} sentences): {' '.join(out['prompt_sentences'])}")
    typer.echo(f"decoder: {out['decoder']}")
    if samples:
        typer.echo(f"{samples} sampled continuation(s), draws seeded by --seed {seed} (the same seed repeats them)")
    for i, run_out in enumerate(out.get("rollouts", [out])):
        if samples:
            typer.echo(f"-- continuation {i + 1} of {samples}")
        _print_rollout(run_out)


def _print_rollout(out: dict) -> None:
    for s in out["steps"]:
        cos = "   -  " if s["cos_prev"] is None else f"{s['cos_prev']:6.3f}"
        mark = "" if s["kept"] else "  (dropped: repeats the previous step)"
        score = "  -  " if s["score"] is None else f"{s['score']:.3f}"
        typer.echo(f"[{s['step']}] score {score}  cos_prev {cos}  {s['text']}{mark}")
        for c in s["candidates"][1:]:
            typer.echo(f"      {c['score']:.3f}  {c['text']}")
    typer.echo(f"stopped: {out['stop_reason']} after {out['steps_run']} steps")
    typer.echo(f"continuation: {out['text']}")
