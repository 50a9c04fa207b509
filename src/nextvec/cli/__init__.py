"""The `nextvec` command line: every command, in the order of the work, with its one-line summary.

Commands are thin wrappers around library functions; a command's docstring is its long --help, the summary
here is its line in `nextvec --help`. Typer (>= 0.13) lists commands in the order they are added.
"""

from __future__ import annotations

import sys

import typer

from nextvec.cli import decode, decoder, demo, diagnose, evaluate, generate, ingest, report, serve, train
from nextvec.errors import NextvecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nextvec: language modelling in a sentence-embedding space.")

# the work in order: make a store, train, judge the run, read it back as text, serve it; then the rest
# (typer lists a sub-app such as `corpus` after the commands wherever it is added)
app.command("ingest", short_help="Split and encode documents into a concept store.")(ingest.ingest_cmd)
app.command("train", short_help="Train a model to predict the next sentence vector.")(train.train_cmd)
app.command("evaluate", short_help="Score a run beside every baseline in one table.")(evaluate.evaluate_cmd)
app.command("diagnose", short_help="Collapse checks of a run, with a verdict per check.")(diagnose.diagnose_cmd)
app.command("report", short_help="Markdown and HTML report of a run, with plots.")(report.report_cmd)
app.command("decode", short_help="Turn vectors back into text.")(decode.decode_cmd)
app.command("generate", short_help="Continue a text prompt sentence by sentence.")(generate.generate_cmd)
app.command("serve", short_help="Serve a trained model over HTTP.")(serve.serve_cmd)
app.command("info", short_help="A store's summary and data card.")(ingest.info_cmd)
app.command("demo", short_help="Every stage on a demo corpus, end to end.")(demo.demo_cmd)
app.command("train-decoder", short_help="Train a learned vector-to-text decoder.")(decoder.train_decoder_cmd)
app.command("evaluate-decoder", short_help="Score the learned decoder beside retrieval.")(decoder.evaluate_decoder_cmd)
app.add_typer(ingest.corpus_app, name="corpus", short_help="List and fetch the demo corpora.")


def main() -> None:
    try:
        app()
    except NextvecError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
