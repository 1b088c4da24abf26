"""Where the cut-outs go: inside the canvas, side by side, overlapping by a wanted amount, or scattered.

Overlap is measured on the cut-outs' opaque pixels (alpha >= 0.5), not on their boxes: a zebra's legs
leave gaps that a box would count as covered. Placements that must meet a condition are drawn at random
up to TRIES times; if none meets it, the draw closest to it is kept, so a scene is always made and the same
seed always makes the same one.
"""
from __future__ import annotations

import numpy as np

TRIES = 200


def random_xy(rng: np.random.Generator, canvas: tuple[int, int], shape: tuple[int, int]) -> tuple[int, int]:
    """A top-left corner keeping a (h, w) cut-out inside the canvas (width, height)."""
    return int(rng.integers(0, canvas[0] - shape[1] + 1)), int(rng.integers(0, canvas[1] - shape[0] + 1))


def covered_fraction(under: np.ndarray, under_xy: tuple[int, int], over: np.ndarray,
                     over_xy: tuple[int, int]) -> float:
    """The share of `under`'s opaque pixels (bool mask at under_xy) that `over`'s opaque pixels cover."""
    left, top = max(under_xy[0], over_xy[0]), max(under_xy[1], over_xy[1])
    right = min(under_xy[0] + under.shape[1], over_xy[0] + over.shape[1])
    bottom = min(under_xy[1] + under.shape[0], over_xy[1] + over.shape[0])
    total = int(under.sum())
    if right <= left or bottom <= top or total == 0:
        return 0.0
    a = under[top - under_xy[1]:bottom - under_xy[1], left - under_xy[0]:right - under_xy[0]]
    b = over[top - over_xy[1]:bottom - over_xy[1], left - over_xy[0]:right - over_xy[0]]
    return float((a & b).sum()) / total


def side_by_side(rng: np.random.Generator, canvas: tuple[int, int], first: tuple[int, int],
                 second: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Corners for two (h, w) cut-outs whose boxes do not meet, along the canvas's longer axis, in random order.
    Raises ValueError if they cannot fit side by side."""
    axis = 0 if canvas[0] >= canvas[1] else 1  # 0: left/right, 1: above/below
    span = [s[1 - axis] for s in (first, second)]  # extent along the axis: width for 0, height for 1
    free = canvas[axis] - sum(span)
    if free < 0:
        raise ValueError(f"cut-outs of {first} and {second} do not fit side by side on {canvas}")
    order = (0, 1) if rng.random() < 0.5 else (1, 0)
    gap_before = int(rng.integers(0, free + 1))
    gap_between = int(rng.integers(0, free - gap_before + 1))
    shapes, starts = (first, second), {}
    at = gap_before
    for k in order:
        starts[k] = at
        at += span[k] + gap_between
    corners = []
    for k, shape in enumerate(shapes):
        across = canvas[1 - axis] - shape[axis]
        other = int(rng.integers(0, across + 1))
        corners.append((starts[k], other) if axis == 0 else (other, starts[k]))
    return corners[0], corners[1]


def occluding_xy(rng: np.random.Generator, canvas: tuple[int, int], back: np.ndarray, back_xy: tuple[int, int],
                 front: np.ndarray, low: float, high: float) -> tuple[int, int]:
    """A corner for `front` (bool mask) whose opaque pixels cover between `low` and `high` of `back`'s: drawn
    among the corners where the two boxes overlap, so a front cut-out much larger than the back one can still
    hide only part of it."""
    best, best_miss = None, float("inf")
    for _ in range(TRIES):
        x = back_xy[0] - front.shape[1] + 1 + rng.integers(0, back.shape[1] + front.shape[1] - 1)
        y = back_xy[1] - front.shape[0] + 1 + rng.integers(0, back.shape[0] + front.shape[0] - 1)
        xy = (int(np.clip(x, 0, canvas[0] - front.shape[1])), int(np.clip(y, 0, canvas[1] - front.shape[0])))
        covered = covered_fraction(back, back_xy, front, xy)
        miss = max(low - covered, covered - high, 0.0)
        if miss < best_miss:
            best, best_miss = xy, miss
        if miss == 0:
            break
    return best


def mutual_overlap(a: np.ndarray, a_xy: tuple[int, int], b: np.ndarray, b_xy: tuple[int, int]) -> float:
    """The larger of the two shares each mask covers of the other."""
    return max(covered_fraction(a, a_xy, b, b_xy), covered_fraction(b, b_xy, a, a_xy))


def scattered_xy(rng: np.random.Generator, canvas: tuple[int, int], mask: np.ndarray,
                 placed: list[tuple[np.ndarray, tuple[int, int]]], most: float) -> tuple[int, int]:
    """A corner for `mask` where it and every placed mask cover at most `most` of each other."""
    best, best_overlap = None, float("inf")
    for _ in range(TRIES):
        xy = random_xy(rng, canvas, mask.shape)
        overlap = max((mutual_overlap(mask, xy, other, other_xy) for other, other_xy in placed), default=0.0)
        if overlap < best_overlap:
            best, best_overlap = xy, overlap
        if overlap <= most:
            break
    return best
