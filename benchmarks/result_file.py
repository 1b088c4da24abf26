"""Where a benchmark's Markdown result goes: its file under results/ (folder made if needed) and stdout."""
from __future__ import annotations

from pathlib import Path


def write_result(text: str, out: Path) -> None:
    text = text.rstrip("\n") + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text, end="")
