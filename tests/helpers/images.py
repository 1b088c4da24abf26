"""Small real pictures written to disk: smooth random photos with a bright blob, and image folders."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_photo(path: Path, seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Path:
    """A smooth random picture with a bright blob: enough structure for SLIC and a CNN."""
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(x * rng.uniform(2, 6) + c) * 0.5 + 0.5 for c in range(3)], axis=2)
    cy, cx = rng.uniform(0.3, 0.7, size=2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.02)[..., None] * rng.uniform(0.3, 1, size=3)
    pixels = (np.clip(base * 0.6 + blob, 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def write_image_folder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    for c in range(classes):
        for i in range(per_class):
            write_photo(root / f"class_{c}" / f"img_{i}.png", seed=100 * c + i)
    return root
