"""`nextvec --help` lists the commands in the order of the work, each with a one-line summary."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from nextvec.cli import app

ORDER = ["ingest", "train", "evaluate", "diagnose", "report", "decode", "generate", "serve",
         "info", "demo", "train-decoder", "evaluate-decoder", "corpus"]


def command_rows(*args: str) -> list[list[str]]:
    """The rows of the Commands section of `nextvec ARGS --help`, split into words (box borders dropped)."""
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    rows = []
    for line in lines[start + 1:]:
        words = line.strip("│╰╯─ ").split()
        if not words:
            break
        rows.append(words)
    return rows


def test_help_lists_commands_in_the_order_of_the_work():
    assert [words[0] for words in command_rows()] == ORDER  # one row per command: no summary wraps


def test_every_summary_is_one_short_line():
    group = typer.main.get_command(app)
    commands = list(group.commands.values()) + list(group.commands["corpus"].commands.values())
    for cmd in commands:
        assert cmd.short_help and "\n" not in cmd.short_help and len(cmd.short_help) <= 60, cmd.name
        assert cmd.help or cmd.name == "corpus", f"{cmd.name} keeps its docstring as the long help"
    assert [words[0] for words in command_rows("corpus")] == ["list", "get"]


def test_command_help_keeps_the_docstring():
    res = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "100"})
    assert "Training curves of every loss term" in res.output
