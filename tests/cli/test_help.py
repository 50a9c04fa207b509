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


def option_lists() -> str:
    """One line per command: its arguments (upper case) and options (every name of each), in declaration order."""
    lines = []

    def walk(cmd, prefix):
        if hasattr(cmd, "commands"):
            for name, sub in sorted(cmd.commands.items()):
                walk(sub, prefix + [name])
            return
        names = [p.name.upper() if p.param_type_name == "argument" else "/".join(p.opts + p.secondary_opts)
                 for p in cmd.params]
        lines.append(" ".join(prefix) + ": " + " ".join(names))

    walk(typer.main.get_command(app), [])
    return "\n".join(lines) + "\n"


def test_every_command_keeps_its_options():
    """The options of every command are those in tests/cli/options.txt: a flag is added, renamed or dropped
    on purpose only (regenerate the file with `python -c "from tests.cli.test_help import option_lists;
    print(option_lists(), end='')" > tests/cli/options.txt` and say why in the commit)."""
    from pathlib import Path

    assert option_lists() == (Path(__file__).with_name("options.txt")).read_text()


def test_usage_and_flags_read_as_command_line_help():
    """`Usage: nextvec generate [OPTIONS] RUN`, and no value placeholder after a flag (--json, --help)."""
    res = CliRunner().invoke(app, ["generate", "--help"], env={"COLUMNS": "100"})
    assert "generate [OPTIONS] RUN" in res.output and "{run}" not in res.output  # the runner names the program "root"
    rows = {line.split()[1]: line for line in res.output.splitlines() if line.startswith("│") and "--" in line}
    assert "<bool>" not in rows["--json"] and "<bool>" not in rows["--help"] and "<int>" in rows["--steps"]
