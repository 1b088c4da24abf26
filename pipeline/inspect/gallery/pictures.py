"""The gallery's pictures: a label drawn on its photo, and an image's maps as one sprite of equal panels.

Label on the photo: foreground tinted and outlined, ignore hatched in a second colour, background left
clear, at the photo's own aspect ratio (the stored label covers the whole image squashed to S x S, so it
is stretched back). Sprite: every member's normalised map, then the photo, the consensus, the mask and
the weight, each a P x P panel in one JPEG; the image page lays captions and the colour bar over it in
HTML, so the text stays sharp and the file stays small. Colours go through a 256-entry lookup table
(numpy indexing), not matplotlib figures: the gallery draws two pictures per image of the store.
"""
from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image
from scipy import ndimage

from core.store import FOREGROUND, IGNORE

MAP_COLOURS = "turbo"  # perceptually ordered, dark blue (0) to dark red (1), readable on small panels
FOREGROUND_RGB = np.array([255, 128, 0], np.float32)  # orange tint + outline
IGNORE_RGB = np.array([0, 200, 255], np.float32)  # cyan hatching
TINT = 0.45
HATCH_PERIOD = 6  # pixels between hatch lines
MASK_PANEL = {0: (0, 0, 0), 1: (255, 255, 255), IGNORE: (0, 200, 255)}  # background, foreground, ignore


def lookup_table(name: str = MAP_COLOURS) -> np.ndarray:
    """uint8 [256, 3]: the colour of each map level."""
    return (colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colour_stops(count: int = 11, name: str = MAP_COLOURS) -> list[str]:
    """CSS colours of `count` evenly spaced map levels, for the page's colour bar."""
    table = lookup_table(name)
    return ["#%02x%02x%02x" % tuple(table[round(i * 255 / (count - 1))]) for i in range(count)]


def colourise(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] of values in [0, 1] (NaN drawn as 0)."""
    levels = np.rint(np.clip(np.nan_to_num(values, nan=0.0), 0, 1) * 255).astype(np.uint8)
    return table[levels]


def resized(rgb: np.ndarray, width: int, height: int, nearest: bool = False) -> np.ndarray:
    resample = Image.NEAREST if nearest else Image.BILINEAR
    return np.asarray(Image.fromarray(rgb).resize((width, height), resample))


def fit(width: int, height: int, longest: int) -> tuple[int, int]:
    """(w, h) with the longest side `longest` and the aspect ratio of width x height."""
    scale = longest / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def label_on_photo(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint8 [h, w, 3]: the photo with the label [S, S] stretched over it (see the module docstring)."""
    height, width = photo.shape[:2]
    label = resized(mask, width, height, nearest=True)
    out = photo.astype(np.float32)
    foreground = label == FOREGROUND
    out[foreground] = (1 - TINT) * out[foreground] + TINT * FOREGROUND_RGB
    yy, xx = np.mgrid[:height, :width]
    hatch = (label == IGNORE) & ((yy + xx) % HATCH_PERIOD < 2)
    out[hatch] = 0.35 * out[hatch] + 0.65 * IGNORE_RGB
    outline = foreground & ~ndimage.binary_erosion(foreground, iterations=1, border_value=1)
    out[outline] = FOREGROUND_RGB
    return out.round().astype(np.uint8)


def mask_panel(mask: np.ndarray) -> np.ndarray:
    out = np.zeros((*mask.shape, 3), np.uint8)
    for value, rgb in MASK_PANEL.items():
        out[mask == value] = rgb
    return out


def sprite(panels: list[np.ndarray], columns: int) -> np.ndarray:
    """uint8 [rows * P, columns * P, 3]: equal square panels laid out row by row (the rest left grey)."""
    size = panels[0].shape[0]
    rows = -(-len(panels) // columns)
    out = np.full((rows * size, columns * size, 3), 64, np.uint8)
    for slot, panel in enumerate(panels):
        r, c = divmod(slot, columns)
        out[r * size:(r + 1) * size, c * size:(c + 1) * size] = panel
    return out


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()
