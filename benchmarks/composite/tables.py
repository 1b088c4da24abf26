"""Reading the world's committed YAML tables: one error type and one line per mistake, naming file and row."""
from __future__ import annotations

from pathlib import Path

import yaml
from PIL import UnidentifiedImageError

from core.errors import PsslError

SPLITS = ("tuning", "heldout")


class CompositeError(PsslError):
    """A table row, stamp or background that cannot be used; the message names it."""


def read_rows(path: str | Path, key: str) -> list[dict]:
    """The list under `key` in the YAML file at `path`, each row a mapping."""
    path = Path(path)
    try:
        rows = yaml.safe_load(path.read_text())[key]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as error:
        raise CompositeError(f"{path}: not a table with a `{key}` list ({type(error).__name__}: {error})") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise CompositeError(f"{path}: `{key}` must be a list of mappings")
    return rows


def field(row: dict, name: str, kind: type, where: str):
    """row[name], which must be a `kind` (a bool is not an int here), or an error naming the row."""
    if name not in row:
        raise CompositeError(f"{where}: missing `{name}`")
    value = row[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CompositeError(f"{where}: `{name}` must be {kind.__name__}, not {value!r}")
    return value


def split_field(row: dict, where: str) -> str:
    split = field(row, "split", str, where)
    if split not in SPLITS:
        raise CompositeError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    return split


def unique(names: list[str], what: str, path: Path) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise CompositeError(f"{path}: {what} {name!r} appears twice")
        seen.add(name)


def unreadable(error: OSError) -> str:
    """Why an image file could not be read, without repeating its path (the message names it once)."""
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    return error.strerror or type(error).__name__
