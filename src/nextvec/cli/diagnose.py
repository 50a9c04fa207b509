"""`nextvec diagnose`: the collapse tests in one command, with a verdict per check."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nextvec.cli.options import flag
from nextvec.decode.spec import SPEC_HELP
from nextvec.options import DiagnoseOptions


def diagnose_cmd(
    run: Path = typer.Argument(..., help="Run folder (best checkpoint, else last) or a .safetensors checkpoint."),
    store: Path = typer.Option(..., "--store", help="Concept store made by the same encoder as the run's training store."),
    split: str = flag(DiagnoseOptions, "split"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the results as JSON here."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Std-ratio histogram PNG (default RUN/diagnose/std_ratio_SPLIT.png)."),
    max_windows: Optional[int] = flag(DiagnoseOptions, "max_windows"),
    n_decode: int = flag(DiagnoseOptions, "n_decode"),
    decoder: str = typer.Option("retrieval", help="Decoder for A/B/C: " + SPEC_HELP + " (any but retrieval loads "
                                "the store's encoder to compare decoded texts)."),
    encoder: str = typer.Option("auto", help="Encoder for a non-retrieval decoder's A test and cosines ('auto': the store's)."),
    fail_on_collapse: bool = typer.Option(False, help="Exit with status 1 when the verdict is COLLAPSED."),
    samples: int = flag(DiagnoseOptions, "samples", "--samples", min=0),
) -> None:
    """Collapse checks of a run, with a verdict per check.

    Moment matching (per-dim std ratio, mean distance, histogram), the mean-vector baseline, decoder
    A/B/C, RankMe and mean pairwise cosine of predictions vs targets, and a verdict per check with its
    thresholds."""
    from nextvec.errors import NextvecError
    from nextvec.decode.spec import attach_decoder
    from nextvec.evaluate import diagnose_run, format_diagnosis, write_json
    from nextvec.evaluate.report import plot_std_ratio_hist
    from nextvec.session import Session

    s = Session.open(run, store, encoder=None if decoder == "retrieval" else encoder)
    attach_decoder(s, decoder)
    res = diagnose_run(s, DiagnoseOptions(split=split, max_windows=max_windows, n_decode=n_decode, samples=samples))
    typer.echo(format_diagnosis(res))
    if json_path is not None:
        typer.echo(f"results written to {write_json(res, json_path)}")
    plot = plot or Path(s.run_dir or run) / "diagnose" / f"std_ratio_{split}.png"
    plot.parent.mkdir(parents=True, exist_ok=True)
    try:
        typer.echo(f"std-ratio histogram written to {plot_std_ratio_hist(res['std_ratio_per_dim'], plot)}")
    except NextvecError as e:  # the plot needs the [report] extra; the diagnosis above stands without it
        typer.secho(f"no histogram: {e}", fg="yellow", err=True)
    if fail_on_collapse and res["collapsed"]:
        raise typer.Exit(1)
