"""Placement: overlap measured on opaque pixels, side by side without touching, occlusion within the asked range,
scattered instances apart."""
from __future__ import annotations

import numpy as np

from benchmarks.composite.layout import covered_fraction, occluding_xy, random_xy, scattered_xy, side_by_side


def test_covered_fraction_counts_opaque_pixels_not_boxes():
    under = np.zeros((4, 4), bool)
    under[:, :2] = True  # 8 opaque pixels, the left half
    over = np.ones((2, 2), bool)
    assert covered_fraction(under, (0, 0), over, (1, 1)) == 2 / 8  # covers (1..2, 1): column 1 rows 1-2
    assert covered_fraction(under, (0, 0), over, (2, 0)) == 0.0  # over the transparent right half
    assert covered_fraction(under, (10, 10), over, (0, 0)) == 0.0


def test_side_by_side_boxes_never_meet_and_stay_inside():
    rng = np.random.default_rng(0)
    for canvas in ((500, 360), (360, 500)):
        for _ in range(50):
            a, b = (150, 170), (170, 140)
            (ax, ay), (bx, by) = side_by_side(rng, canvas, a, b)
            for (x, y), (h, w) in (((ax, ay), a), ((bx, by), b)):
                assert 0 <= x and x + w <= canvas[0] and 0 <= y and y + h <= canvas[1]
            apart_x = ax + a[1] <= bx or bx + b[1] <= ax
            apart_y = ay + a[0] <= by or by + b[0] <= ay
            assert apart_x or apart_y


def test_occluding_xy_hides_the_asked_share():
    rng = np.random.default_rng(1)
    back, front = np.ones((100, 80), bool), np.ones((60, 60), bool)
    for _ in range(20):
        back_xy = random_xy(rng, (400, 300), back.shape)
        xy = occluding_xy(rng, (400, 300), back, back_xy, front, 0.2, 0.6)
        assert 0.2 <= covered_fraction(back, back_xy, front, xy) <= 0.6


def test_scattered_instances_barely_overlap():
    rng = np.random.default_rng(2)
    placed = []
    for _ in range(3):
        mask = np.ones((90, 90), bool)
        placed.append((mask, scattered_xy(rng, (480, 400), mask, placed, 0.15)))
    for i, (a, a_xy) in enumerate(placed):
        for b, b_xy in placed[i + 1:]:
            assert covered_fraction(a, a_xy, b, b_xy) <= 0.15
