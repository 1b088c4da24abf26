"""YAML configs with `dotted.key=value` overrides, validated into core/schema.py's models; their dump is saved
beside every output."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from core.errors import PsslError


class ConfigError(PsslError, ValueError):
    """A config that cannot be used; the message names the key and what is wrong."""


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = (), schema=None, context=None):
    """The YAML file with its overrides applied: with a `core.schema` model, that model, validated and
    with its defaults applied (the problems are raised as one ConfigError line), else the plain dict.
    `context` (a dict, or a function making one, called only once keys and values pass) names what the
    schema checks names against."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(config).__name__}")
    config = apply_overrides(config, overrides)
    if schema is None:
        return config
    origin = lambda key: _origin(key, path, overrides)  # noqa: E731
    check(config, schema, None, origin)  # keys and values first: no registry needed, so it is quick
    if context is None:
        return schema.model_validate(config)
    context = context() if callable(context) else context  # then the names only the running code knows
    check(config, schema, context, origin)
    return schema.model_validate(config, context=context)


def check(config: dict, schema, context: dict | None = None, origin=lambda key: "") -> None:
    """Raise one ConfigError line listing what `schema` (a core.schema model) refuses in `config`."""
    from core.schema import problems

    found = problems(config, schema, context)
    if found:
        raise ConfigError(" | ".join(f"{key}: {what}{origin(key)}" for key, what in found))


def typed(config, schema, context: dict | None = None):
    """`config` as the `schema` model: itself when it already is one (a command's loaded config), else a
    dict (a test's, a benchmark's) checked as load_config checks a file."""
    if isinstance(config, schema):
        return config
    check(config, schema, context)
    return schema.model_validate(config, context=context or {})


def recorded(config) -> dict:
    """What a run records of its config: the validated model's dump, every default included."""
    return config.model_dump(mode="json")


def _origin(key: str, path: Path, overrides) -> str:
    for item in overrides:
        name = item.partition("=")[0]
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return f" (override {item})"
    return f" (in {path})"


def apply_overrides(config: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of `config` with each `a.b.c=value` set; values are parsed as YAML scalars/lists."""
    resolved = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        node = resolved
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[leaf] = yaml.safe_load(raw)
    return resolved


def get(config: dict, dotted: str, default: Any = ...) -> Any:
    """Look up `a.b.c`; without a default a missing key is a ConfigError naming it."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(f"config has no key {dotted!r}")
            return default
        node = node[part]
    return node
