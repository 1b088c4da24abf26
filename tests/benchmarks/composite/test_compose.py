"""The ground truth is exactly the target's visible alpha after compositing in depth order (hand-computed)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.composite.compose import Layer, composite, visible_mask


def layer(alpha: list[list[int]], colour: int, x: int, y: int) -> Layer:
    alpha = np.array(alpha, np.uint8)
    rgba = np.zeros(alpha.shape + (4,), np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = alpha
    return Layer(rgba, x, y)


# the target: a 3x3 cut-out at (1, 1) whose top-left pixel is only 40% opaque (102/255) and the centre 60% (153)
TARGET = layer([[102, 255, 255], [255, 153, 255], [255, 255, 255]], colour=200, x=1, y=1)
# an occluder: a 2x2 cut-out at (3, 3), its top-left pixel half transparent (128/255 = 0.502)
OCCLUDER = layer([[128, 255], [255, 255]], colour=0, x=3, y=3)


def test_an_occluder_in_front_removes_the_pixels_it_covers():
    background = np.full((6, 6, 3), 100, np.uint8)
    image, coverages = composite(background, [TARGET, OCCLUDER])
    expected = np.array([[0, 0, 0, 0, 0, 0],
                         [0, 0, 1, 1, 0, 0],  # (1, 1) is 40% target: under one half
                         [0, 1, 1, 1, 0, 0],  # the centre (2, 2) is 60% target: over one half
                         [0, 1, 1, 0, 0, 0],  # (3, 3): 1 x (1 - 0.502) = 0.498 target, under one half
                         [0, 0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0, 0]], np.uint8)
    assert np.array_equal(visible_mask(coverages, [0]), expected)
    assert coverages[0][3, 3] == pytest.approx(1 - 128 / 255)
    assert coverages[1][3, 3] == pytest.approx(128 / 255)
    assert image[2, 2, 0] == round(100 * (1 - 0.6) + 200 * 0.6)  # the target over the background
    assert image[4, 4, 0] == 0 and image[0, 0, 0] == 100  # the opaque occluder; untouched background


def test_the_target_in_front_keeps_its_whole_alpha_and_instances_add_up():
    background = np.zeros((6, 6, 3), np.uint8)
    _, coverages = composite(background, [OCCLUDER, TARGET])
    assert np.array_equal(visible_mask(coverages, [1])[1:4, 1:4], (TARGET.rgba[..., 3] >= 128).astype(np.uint8))
    # two 40% instances stacked: 0.4 + 0.4 x 0.6 = 0.64 of the pixel is the class
    faint = layer([[102]], colour=50, x=0, y=0)
    _, coverages = composite(background, [faint, faint])
    assert visible_mask(coverages, [0, 1])[0, 0] == 1 and visible_mask(coverages, [0])[0, 0] == 0


def test_a_layer_outside_the_canvas_is_refused():
    with pytest.raises(ValueError, match="not inside"):
        composite(np.zeros((4, 4, 3), np.uint8), [layer([[255, 255]], 0, x=3, y=0)])
