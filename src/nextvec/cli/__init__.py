"""The `nextvec` command line. Each module in this package with a `register(app)` adds its commands;
commands are thin wrappers around library functions and their docstrings are their --help."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from nextvec.errors import NextvecError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="nextvec: language modelling in a sentence-embedding space.")

for _mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    _m = importlib.import_module(f"{__name__}.{_mod.name}")
    if hasattr(_m, "register"):
        _m.register(app)


def main() -> None:
    try:
        app()
    except NextvecError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
