"""`nextvec report`: a Markdown and standalone HTML report of a run, with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def report_cmd(
    run: Path = typer.Argument(..., help="Run folder (training curves come from RUN/metrics.jsonl)."),
    store: Path = typer.Option(..., "--store", help="Concept store made by the same encoder as the run's training store."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default RUN/report)."),
    split: str = typer.Option("test", help="Split to evaluate and diagnose on."),
    max_windows: Optional[int] = typer.Option(None, help="Use a fixed random subset of this many windows."),
    examples: int = typer.Option(10, help="Example predictions decoded by retrieval."),
) -> None:
    """Markdown and HTML report of a run, with plots.

    Training curves of every loss term and val metric, the evaluate table, the collapse diagnosis with
    its std-ratio histogram, and example predictions decoded by retrieval beside the true next sentence."""
    from nextvec.evaluate.report import write_report

    path = write_report(run, store, out_dir=out, split=split, max_windows=max_windows, n_examples=examples)
    typer.echo(f"report written to {path} (and {path.with_suffix('.html')})")
