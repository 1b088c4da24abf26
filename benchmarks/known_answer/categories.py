"""The world's object categories: each has its own shape but shares colours and textures with others.

Colour and texture overlap on purpose (every colour and texture belongs to two or more categories,
and distractors wear them too), so a classifier must look at the shape, where the mask is.
Names are in sorted order, so a category's index here is its torchvision ImageFolder index.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from benchmarks.known_answer import shapes

PALETTE = {
    "red": (0.85, 0.15, 0.15), "orange": (0.95, 0.55, 0.10), "yellow": (0.95, 0.85, 0.15),
    "green": (0.20, 0.70, 0.25), "cyan": (0.15, 0.75, 0.80), "blue": (0.15, 0.30, 0.85),
    "purple": (0.55, 0.20, 0.75), "pink": (0.95, 0.50, 0.70), "white": (0.95, 0.95, 0.92),
}


@dataclass(frozen=True)
class Category:
    name: str
    shape: Callable[[], list[shapes.Piece]]
    colours: tuple[str, ...]
    textures: tuple[str, ...]

    def colour(self, name: str) -> np.ndarray:
        return np.array(PALETTE[name], dtype=np.float32)


CATEGORIES = (
    Category("arrow", shapes.arrow, ("red", "blue", "white"), ("solid", "stripes")),
    Category("crescent", shapes.crescent, ("yellow", "purple", "cyan"), ("solid", "radial")),
    Category("cross", shapes.cross, ("green", "red", "white"), ("checker", "solid")),
    Category("gear", shapes.gear, ("blue", "orange", "green"), ("radial", "dots")),
    Category("ring", shapes.ring, ("orange", "cyan", "pink"), ("stripes", "solid")),
    Category("star", shapes.star, ("yellow", "pink", "blue"), ("dots", "radial")),
    Category("triangle", shapes.triangle, ("purple", "green", "orange"), ("stripes", "checker")),
)
CLASS_NAMES = tuple(category.name for category in CATEGORIES)
assert list(CLASS_NAMES) == sorted(CLASS_NAMES), "category order must equal ImageFolder's sorted order"
