"""Typed configuration: pydantic schemas that reject unknown keys, loaded from TOML/YAML/JSON with
dotted CLI overrides (`--set train.lr=3e-4 --set model.name=gru`).

Schemas subclass `Strict`; `load_config(Schema, path, overrides)` returns a validated instance.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from nextvec.errors import NextvecError


class Strict(BaseModel):
    """Base for every config section: unknown keys are an error, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


S = TypeVar("S", bound=BaseModel)


def read_config_file(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise NextvecError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text) or {}
        if path.suffix == ".json":
            return json.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        raise NextvecError(f"cannot parse config {path}: {e}") from e
    raise NextvecError(f"config {path} must be .toml, .yaml/.yml or .json")


def parse_value(raw: str):
    """CLI override values: JSON/TOML-ish literals (numbers, true/false, lists), else the plain string."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict, overrides: list[str] | None) -> dict:
    """Apply `a.b.c=value` overrides to a nested dict (copied)."""
    data = json.loads(json.dumps(data))
    for item in overrides or []:
        key, eq, raw = item.partition("=")
        if not eq or not key.strip():
            raise NextvecError(f"override {item!r} must look like section.key=value")
        *parents, leaf = key.strip().split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise NextvecError(f"override {item!r}: {p} is not a section")
        node[leaf] = parse_value(raw)
    return data


def load_config(schema: type[S], path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict | None = None) -> S:
    """Validate `base` <- file at `path` <- `overrides` against `schema`; errors name the offending key."""
    data = dict(base or {})
    if path is not None:
        data = _deep_merge(data, read_config_file(path))
    data = apply_overrides(data, overrides)
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise NextvecError(f"invalid config: {problems}") from e


def _deep_merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def save_config(cfg: BaseModel, path: str | Path) -> None:
    Path(path).write_text(json.dumps(cfg.model_dump(mode="json"), indent=2, sort_keys=True))
