"""`nextvec --help` lists the commands in the order of the work, each with a one-line summary."""

from __future__ import annotations

import inspect

import typer
from typer.testing import CliRunner

from nextvec.cli import app

ORDER = ["ingest", "train", "evaluate", "diagnose", "report", "decode", "generate", "serve",
         "info", "verify", "demo", "train-decoder", "evaluate-decoder", "corpus"]


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
    """The summary is the docstring's first paragraph: one line, short enough not to wrap in --help."""
    group = typer.main.get_command(app)
    commands = list(group.commands.values()) + list(group.commands["corpus"].commands.values())
    for cmd in commands:
        summary = inspect.cleandoc(cmd.help or "").split("\n\n")[0]
        assert summary and "\n" not in summary and len(summary) <= 58, f"{cmd.name}: {summary!r}"
    assert [words[0] for words in command_rows("corpus")] == ["list", "get"]


def test_command_help_keeps_the_rest_of_the_docstring():
    res = CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "100"})
    assert "Markdown and HTML report of a run" in res.output and "Training curves of every loss term" in res.output
