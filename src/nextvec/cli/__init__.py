"""The `nextvec` command line: every command, in the order of the work, with its one-line summary.

Commands are thin wrappers around library functions. A command's docstring is its --help; its first
line, a paragraph of its own, is its summary in `nextvec --help`. Typer (>= 0.13) lists commands in the
order they are added.
"""

from nextvec.cli.main import COMMANDS, app, main

__all__ = ["COMMANDS", "app", "main"]
