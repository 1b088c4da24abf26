"""YAML configs with `dotted.key=value` overrides; the resolved dict is saved beside every output."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from core.errors import PsslError


class ConfigError(PsslError, ValueError):
    """A config that cannot be used; the message names the key and what is wrong."""


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    config = yaml.safe_load(path.read_text()) or {}
    return apply_overrides(config, overrides)


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
