"""The `nextvec` app: the command table in the order of the work, and the entry point."""


from __future__ import annotations

import sys

import typer

from nextvec.cli import decode, demo, diagnose, evaluate, generate, ingest, learned, report, serve, train
from nextvec.cli.options import Command
from nextvec.errors import NextvecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nextvec: language modelling in a sentence-embedding space.")

COMMANDS = {  # name -> function, in the order of the work; a docstring's first line is its summary
    "ingest": ingest.ingest_cmd, "train": train.train_cmd, "evaluate": evaluate.evaluate_cmd,
    "diagnose": diagnose.diagnose_cmd, "report": report.report_cmd, "decode": decode.decode_cmd,
    "generate": generate.generate_cmd, "serve": serve.serve_cmd, "info": ingest.info_cmd, "verify": ingest.verify_cmd, "demo": demo.demo_cmd,
    "train-decoder": learned.train_decoder_cmd, "evaluate-decoder": learned.evaluate_decoder_cmd,
}


for _name, _command in COMMANDS.items():
    app.command(_name, cls=Command)(_command)
app.add_typer(ingest.corpus_app, name="corpus")  # typer lists a sub-app after the commands


def main() -> None:
    try:
        app()
    except NextvecError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
