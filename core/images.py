"""Decode any image file to 8-bit RGB, or say in one line why it cannot be used.

Convertible inputs are converted (EXIF orientation, grayscale, palette, CMYK, alpha, 16-bit);
unreadable, truncated, tiny and decompression-bomb files raise BadImage with the reason.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from core.errors import PsslError
from core.store import INDEX_PATH, data_root, map_size

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's own bomb threshold (~ 9459 x 9459)


class BadImage(PsslError, ValueError):
    """An input that is recorded as bad and skipped; str(error) is the reason kept in the store."""


def load_rgb(path: str | Path, min_side: int = 16, max_pixels: int = DEFAULT_MAX_PIXELS,
             draft: int | None = None) -> np.ndarray:
    """Return an HxWx3 uint8 array of the image at `path` with its EXIF orientation applied; it is writable
    (numpy's view of a PIL image is not, and torch warns on every read-only array it is given).

    `draft`: a JPEG may be decoded smaller, by libjpeg's DCT scaling (1/2, 1/4, 1/8; Pillow's draft mode), as
    long as both sides stay >= draft: a reader that resizes it smaller anyway (thumbnails, the explain
    stage's input) skips most of a large photo's pixels (results/bench_decode.md). The size and bomb checks
    use the stored size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise BadImage(f"refused: {width}x{height} exceeds {max_pixels} pixels "
                                   "(possible decompression bomb)")
                if min(width, height) < min_side:
                    raise BadImage(f"too small: {width}x{height} (min side {min_side})")
                if draft:
                    image.draft(None, (draft, draft))
                image.load()
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise BadImage(f"refused: {error}") from None
    except FileNotFoundError:
        if Path(path).is_symlink():
            raise BadImage(f"broken symbolic link to {os.readlink(path)}") from None
        raise BadImage("file not found") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise BadImage(f"unreadable: {type(error).__name__}: {error}") from None
    return rgb


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        backdrop = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(backdrop, image)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def image_at_map_size(group, index: int) -> np.ndarray:
    """Image `index` of a store resized to its map size (maps cover the whole image), grey if unreadable."""
    size = map_size(group)
    path = Path(str(data_root(group) or "")) / str(group[INDEX_PATH][index])
    try:
        rgb = load_rgb(path)
    except BadImage:
        return np.full((size, size, 3), 128, np.uint8)
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
