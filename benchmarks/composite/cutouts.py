"""One instance of a stamp as it is pasted: resized, maybe mirrored, its brightness and contrast jittered.

Pillow resizes RGBA with premultiplied alpha, so the enlarged or shrunk edges keep the object's colour and
no dark fringe from the transparent pixels' RGB. The jitter changes the cut-out's colours only, never its
alpha: the mask stays exactly the stamp's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from benchmarks.composite.catalogue import OPAQUE

MAX_UPSCALE = 2.0  # a stamp is enlarged at most this much: further, its photo turns visibly soft


@dataclass(frozen=True)
class Look:
    scale: float
    flip: bool
    brightness: float  # multiplies the colours
    contrast: float  # stretches the colours about the cut-out's own mean colour


def fitting_scale(shape: tuple[int, int], longest: float, canvas: tuple[int, int]) -> float:
    """The scale giving the cut-out (h, w) a longest side of `longest` px, capped by MAX_UPSCALE and so that it
    fits the canvas (width, height) with a 2% margin."""
    height, width = shape
    return min(longest / max(height, width), MAX_UPSCALE, 0.98 * canvas[0] / width, 0.98 * canvas[1] / height)


def prepare(rgba: np.ndarray, look: Look) -> np.ndarray:
    """uint8 RGBA of the instance, at least 1x1 px."""
    height, width = rgba.shape[:2]
    size = (max(1, round(width * look.scale)), max(1, round(height * look.scale)))
    image = Image.fromarray(rgba, "RGBA").resize(size, Image.LANCZOS)
    if look.flip:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    pixels = np.asarray(image)
    rgb, alpha = pixels[..., :3].astype(np.float64), pixels[..., 3]
    weight = alpha.astype(np.float64)[..., None] / 255
    mean = (rgb * weight).sum(axis=(0, 1)) / max(weight.sum(), 1e-9)
    jittered = ((rgb - mean) * look.contrast + mean) * look.brightness
    out = np.empty_like(pixels)
    out[..., :3] = np.clip(np.rint(jittered), 0, 255).astype(np.uint8)
    out[..., 3] = alpha
    return out


def opaque(rgba: np.ndarray) -> np.ndarray:
    """bool [H, W]: the pixels that count as the object (alpha >= 0.5)."""
    return rgba[..., 3] >= OPAQUE
