"""A contact sheet of built scenes: each image with its target's mask outlined, captioned with class and kind.

It is for looking: are the masks exactly the visible target, are the objects plausible, are the
backgrounds free of objects of their own. Scenes are picked evenly over each kind so every kind shows.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.composite.build import SCENES
from benchmarks.composite.splits import KINDS
from benchmarks.composite.tables import CompositeError

TILE = 256
CAPTION = 14
OUTLINE = (255, 230, 0)


def outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """bool [H, W]: mask pixels with a non-mask 4-neighbour, thickened inwards to `width` px."""
    inside = mask.astype(bool)
    edge = np.zeros_like(inside)
    shrunk = inside.copy()
    for _ in range(width):
        padded = np.pad(shrunk, 1)
        core = shrunk & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        edge |= shrunk & ~core
        shrunk = core
    return edge


def pick(records: list[dict], count: int) -> list[dict]:
    """About count / len(KINDS) scenes of each kind, spread evenly over the split; each kind starts at another
    offset, so the kinds do not all show the same classes (every class has the same run of kinds)."""
    per_kind = -(-count // len(KINDS))
    chosen = []
    for k, kind in enumerate(KINDS):
        of_kind = [r for r in records if r["kind"] == kind]
        step = len(of_kind) / per_kind
        chosen += [of_kind[int(j * step + k * step / len(KINDS)) % len(of_kind)]
                   for j in range(min(per_kind, len(of_kind)))]
    return chosen[:count]


def tile(root: Path, record: dict) -> Image.Image:
    with Image.open(root / record["image"]) as image:
        rgb = np.asarray(image.convert("RGB")).copy()
    with Image.open(root / record["mask"]) as mask:
        edge = outline(np.asarray(mask), width=max(2, rgb.shape[1] // 160))
    rgb[edge] = OUTLINE
    picture = Image.fromarray(rgb)
    picture.thumbnail((TILE, TILE), Image.LANCZOS)
    return picture


def contact_sheet(dest: str | Path, split: str, out: str | Path, count: int = 24, columns: int = 6) -> Path:
    root = Path(dest) / split
    try:
        records = json.loads((root / SCENES).read_text())["images"]
    except (OSError, ValueError, KeyError) as error:
        raise CompositeError(f"{root / SCENES}: not a built split ({type(error).__name__}: {error}); "
                             "run `python -m benchmarks.composite build` first") from None
    chosen = pick(records, count)
    rows = -(-len(chosen) // columns)
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + CAPTION)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, record in enumerate(chosen):
        x, y = (k % columns) * TILE, (k // columns) * (TILE + CAPTION)
        picture = tile(root, record)
        sheet.paste(picture, (x + (TILE - picture.width) // 2, y + CAPTION + (TILE - picture.height) // 2))
        others = sorted({o["class_name"] for o in record["objects"] if o["role"] == "distractor"})
        caption = f"{record['class_name']} ({record['kind']})" + (f" + {', '.join(others)}" if others else "")
        draw.text((x + 3, y + 1), caption[:42], fill=(0, 0, 0))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
