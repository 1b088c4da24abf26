"""Alpha compositing in depth order, and the exact mask of what stays visible.

Layers are painted back to front with the "over" operator. Each layer's coverage of a pixel is its alpha
times the transparency of every layer painted after it: a pixel of the target behind an opaque occluder has
coverage 0, behind a half-transparent edge one half. The ground truth is the pixels where the target's
instances together cover at least one half, so the mask is what the image shows, not what was pasted.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VISIBLE = 0.5


@dataclass(frozen=True)
class Layer:
    rgba: np.ndarray  # uint8 [h, w, 4]
    x: int  # top-left corner on the canvas
    y: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        """left, top, right, bottom (exclusive) on the canvas."""
        return self.x, self.y, self.x + self.rgba.shape[1], self.y + self.rgba.shape[0]


def composite(background: np.ndarray, layers: list[Layer]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(uint8 RGB image, float32 coverage [H, W] of each layer); `layers` go from back to front."""
    canvas = background.astype(np.float32)
    height, width = canvas.shape[:2]
    coverages: list[np.ndarray] = []
    for layer in layers:
        left, top, right, bottom = layer.box
        if left < 0 or top < 0 or right > width or bottom > height:
            raise ValueError(f"layer box {layer.box} is not inside the {width}x{height} canvas")
        alpha = np.zeros((height, width), np.float32)
        alpha[top:bottom, left:right] = layer.rgba[..., 3].astype(np.float32) / 255
        for coverage in coverages:
            coverage *= 1 - alpha
        coverages.append(alpha)
        region = canvas[top:bottom, left:right]
        a = alpha[top:bottom, left:right, None]
        region[...] = region * (1 - a) + layer.rgba[..., :3].astype(np.float32) * a
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), coverages


def visible_mask(coverages: list[np.ndarray], which: list[int]) -> np.ndarray:
    """uint8 [H, W], 1 where the chosen layers together cover at least VISIBLE, else 0."""
    total = np.zeros_like(coverages[0])
    for index in which:
        total += coverages[index]
    return (total >= VISIBLE).astype(np.uint8)
