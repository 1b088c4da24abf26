"""Where a benchmark's result goes: its Markdown file under results/ (folder made if needed) and stdout, and the
figures other code reads (`pipeline plan`) as JSON beside it, so no reader parses a Markdown table."""
from __future__ import annotations

import json
import os
from pathlib import Path


def figures_path(markdown: Path) -> Path:
    """The JSON file beside a result's Markdown file: the same name, `.json`."""
    return markdown.with_suffix(".json")


def write_result(text: str, out: Path, figures: dict | None = None) -> None:
    """Write `text` to `out` and, when given, `figures` to its JSON file; each file whole or not at all."""
    text = text.rstrip("\n") + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    _replace(out, text)
    if figures is not None:
        _replace(figures_path(out), json.dumps(figures, indent=1, sort_keys=True) + "\n")
    print(text, end="")


def _replace(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
