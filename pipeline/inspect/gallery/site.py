"""The gallery's files: data as small JavaScript files, and the static pages copied beside them.

A page opened from a file:// address may not fetch() its neighbours, but it may load scripts: every
data file is `PSSL.put("<key>", <JSON>);`, loaded with a <script> tag under data/<key>.js. Files are
written only when their content changed, so a re-run leaves the unchanged ones (and their times) alone.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

STATIC = ("index.html", "image.html", "classes.html", "gallery.js", "gallery.css")


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write `content` to `path` unless it already holds it; True when written."""
    if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    partial.replace(path)
    return True


def data_file(key: str, value) -> bytes:
    return f"PSSL.put({json.dumps(key)}, {json.dumps(value, separators=(',', ':'), allow_nan=False)});\n".encode()


def write_data(out: Path, key: str, value) -> bool:
    """data/<key>.js holding `value` (plain JSON data: NaN must already be None)."""
    return write_if_changed(Path(out) / "data" / f"{key}.js", data_file(key, value))


def copy_static(out: Path) -> None:
    """The pages and their script and style, from this package."""
    for name in STATIC:
        write_if_changed(Path(out) / name, resources.files("pipeline.inspect.gallery").joinpath("static", name).read_bytes())
