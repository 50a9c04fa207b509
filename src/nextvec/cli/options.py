"""CLI flags derived from an operation's options model (pydantic), so a default and its help live in one place:
the model's field."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel
from typer.core import TyperArgument, TyperCommand


def flag(model: type[BaseModel], name: str, *decls: str, prefix: str = "", **option: Any) -> Any:
    """A typer option for the field `name` of `model`: the field's default, and `prefix` + its description as
    the help.

    `decls` are the flag's names ("--steps", "--no-repeat/--allow-repeats"); without them typer names it after
    the command's parameter. `option` goes to typer.Option as is (min=..., or a `default` / `help` of its own
    where the flag differs from the field). A tuple default is shown and parsed as comma-separated text
    ("0.8,0.1,0.1"): the command turns it back into the tuple.
    """
    field = model.model_fields[name]
    default = option.pop("default", field.default)
    if isinstance(default, tuple):
        default = ",".join(map(str, default))
    help_text = option.pop("help", prefix + field.description if field.description else None)
    return typer.Option(default, *decls, help=help_text, **option)


class Command(TyperCommand):
    """Help as command-line tools write it: `Usage: nextvec generate [OPTIONS] RUN` (typer writes a required
    argument as `{run}`) and nothing after a flag that takes no value (typer writes `<bool>`, even after
    --help)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        args = [p for p in self.get_params(ctx) if isinstance(p, TyperArgument)]
        return [self.options_metavar] + [a.name.upper() if a.required else f"[{a.name.upper()}]" for a in args]

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for p in params:
            if getattr(p, "is_flag", False) and p.metavar is None:
                p.metavar = ""
        return params
