"""The Pascal VOC class names and colour palette, and side-by-side renders of predictions (any palette).

The palette is the one VOC ships in its label PNGs (index i's colour comes from the bits of i), so a
rendered prediction looks exactly like the dataset's own ground-truth files; index 255 (ignore)
gets VOC's cream boundary colour.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def voc_palette() -> np.ndarray:
    """[256, 3] uint8: VOC's colour for every label index (bits of i spread over R, G, B)."""
    index = np.arange(256)
    colours = np.zeros((256, 3), dtype=np.int64)
    for shift in range(8):
        for channel in range(3):
            bit = (index >> (3 * shift + channel)) & 1
            colours[:, channel] |= bit << (7 - shift)
    return colours.astype(np.uint8)


def colorize(label: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """HxW integer label map (values 0-255) -> HxWx3 uint8 RGB with `palette`'s colours (default VOC's)."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"colorize expects an HxW label map, got shape {label.shape}")
    if label.min(initial=0) < 0 or label.max(initial=0) > 255:
        raise ValueError("colorize expects label values in 0..255")
    return (voc_palette() if palette is None else palette)[label.astype(np.uint8)]


def to_palette_png(label: np.ndarray) -> Image.Image:
    """A palette ("P" mode) image of `label`, the format of VOC's own SegmentationClass files."""
    image = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="P")
    image.putpalette(voc_palette().reshape(-1).tolist())
    return image


def render_grid(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: str | Path,
                tile_height: int = 160, palette: np.ndarray | None = None) -> Path:
    """Write a PNG with one row per sample: image | ground truth | prediction, each scaled to `tile_height`,
    labels in `palette`'s colours (default VOC's).

    Columns are as wide as the widest sample, so the column titles sit above every row's tiles.
    """
    if not rows:
        raise ValueError("render_grid needs at least one (image, ground truth, prediction) row")
    header = 14
    tiles = []
    for image, truth, prediction in rows:
        height, width = truth.shape
        size = (max(1, round(width * tile_height / height)), tile_height)
        tiles.append([Image.fromarray(np.asarray(image, dtype=np.uint8)).resize(size, Image.BILINEAR),
                      *(Image.fromarray(colorize(label, palette)).resize(size, Image.NEAREST)
                        for label in (truth, prediction))])
    column = max(row[0].width for row in tiles) + 4
    grid = Image.new("RGB", (3 * column, header + tile_height * len(tiles)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for index, title in enumerate(("image", "ground truth", "prediction")):
        draw.text((index * column + 2, 1), title, fill=(0, 0, 0))
    for row_index, row in enumerate(tiles):
        for index, tile in enumerate(row):
            grid.paste(tile, (index * column, header + row_index * tile_height))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")  # whole or absent: a kill mid-write leaves the old picture
    grid.save(temporary, format="PNG")
    os.replace(temporary, path)
    return path
