"""`nextvec report`: a Markdown and standalone HTML report of a run, with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from nextvec.cli.options import flag
from nextvec.options import ReportOptions


def report_cmd(
    run: Path = typer.Argument(..., help="Run folder (training curves come from RUN/metrics.jsonl)."),
    store: Path = typer.Option(..., "--store", help="Concept store made by the same encoder as the run's training store."),
    out: Optional[Path] = flag(ReportOptions, "out", "--out"),
    split: str = flag(ReportOptions, "split"),
    max_windows: Optional[int] = flag(ReportOptions, "max_windows"),
    examples: int = flag(ReportOptions, "examples"),
) -> None:
    """Markdown and HTML report of a run, with plots.

    Training curves of every loss term and val metric, the evaluate table, the collapse diagnosis with
    its std-ratio histogram, and example predictions decoded by retrieval beside the true next sentence."""
    from nextvec.evaluate.report import write_report
    from nextvec.session import Session

    path = write_report(Session.open(run, store, encoder=None),
                        ReportOptions(out=out, split=split, max_windows=max_windows, examples=examples))
    typer.echo(f"report written to {path} (and {path.with_suffix('.html')})")
