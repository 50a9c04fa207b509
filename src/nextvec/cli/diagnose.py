"""`nextvec diagnose`: the collapse tests in one command, with a verdict per check."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def diagnose_cmd(
    run: Path = typer.Argument(..., help="Run folder (best checkpoint, else last) or a .safetensors checkpoint."),
    store: Path = typer.Option(..., "--store", help="Concept store made by the same encoder as the run's training store."),
    split: str = typer.Option("test", help="Split to diagnose on: test | val | train."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Std-ratio histogram PNG (default RUN/diagnose/std_ratio_SPLIT.png)."),
    max_windows: Optional[int] = typer.Option(None, help="Diagnose a fixed random subset of this many windows."),
    n_decode: int = typer.Option(500, help="Windows for the decoder A/B/C tests."),
    decoder: str = typer.Option("retrieval", help="Decoder for A/B/C: 'retrieval' (nearest store chunk) or a learned "
                                "decoder folder (then the encoder is loaded to compare decoded texts)."),
    encoder: str = typer.Option("minilm", help="Encoder spec for a learned decoder's A test and cosines."),
    fail_on_collapse: bool = typer.Option(False, help="Exit with status 1 when the verdict is COLLAPSED."),
    samples: int = typer.Option(8, "--samples", min=0, help="K samples per window for the samples' realism check; 0 = off."),
) -> None:
    """Collapse checks of a run, with a verdict per check.

    Moment matching (per-dim std ratio, mean distance, histogram), the mean-vector baseline, decoder
    A/B/C, RankMe and mean pairwise cosine of predictions vs targets, and a verdict per check with its
    thresholds."""
    from nextvec.evaluate import diagnose_run, format_diagnosis, write_json
    from nextvec.evaluate.report import plot_std_ratio_hist
    from nextvec.evaluate.runner import load_run

    model, meta, st = load_run(run, store)
    dec = enc = None
    if decoder != "retrieval":
        from nextvec.decode.inverter import InverterDecoder
        from nextvec.encode import load_encoder

        dec = InverterDecoder.load(decoder)
        dec.check_store(st)  # a decoder trained for another encoder is refused
        enc = load_encoder(encoder)
    res = diagnose_run(model, st, split, context_length=meta.get("context_length"), max_windows=max_windows,
                       n_decode=n_decode, decoder=dec, encoder=enc, meta=meta, checkpoint=meta.get("path", str(run)),
                       samples=samples)
    typer.echo(format_diagnosis(res))
    plot = plot or Path(meta.get("run_dir") or run) / "diagnose" / f"std_ratio_{split}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    typer.echo(f"std-ratio histogram written to {plot_std_ratio_hist(res['std_ratio_per_dim'], plot)}")
    if json_path is not None:
        typer.echo(f"results written to {write_json(res, json_path)}")
    if fail_on_collapse and res["collapsed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_cmd)
