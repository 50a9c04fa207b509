"""CLI flags derived from an operation's options model (pydantic), so a default and its help live in one place:
the model's field."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel


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
