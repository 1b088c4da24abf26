"""Paired bootstrap intervals: exact where the answer is known, and wide where the images disagree."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.yardsticks.bootstrap import dataset_miou, mean_of_images, paired_difference


def test_a_constant_gain_on_every_image_is_its_own_interval():
    a = np.linspace(0.2, 0.8, 25)
    gain = paired_difference(a, a + 0.05, mean_of_images)
    assert gain.value == pytest.approx(0.05) and gain.low == pytest.approx(0.05) and gain.high == pytest.approx(0.05)
    assert gain.holds
    same = paired_difference(a, a, mean_of_images)
    assert (same.value, same.low, same.high, same.holds) == (0.0, 0.0, 0.0, False)


def test_a_gain_on_half_the_images_and_a_loss_on_the_rest_does_not_hold():
    a = np.full(40, 0.5)
    b = np.where(np.arange(40) % 2 == 0, 0.7, 0.31)  # mean gain +0.005, per image +0.2 or -0.19
    mixed = paired_difference(a, b, mean_of_images)
    assert mixed.value == pytest.approx(0.005) and mixed.low < 0 < mixed.high and not mixed.holds


def test_dataset_miou_sums_counts_before_dividing():
    counts = np.array([[1, 2, 3, 4], [3, 6, 1, 4]])  # fg 4 / 8, bg 4 / 8
    assert dataset_miou(counts) == pytest.approx(0.5)
    assert dataset_miou(counts[:1]) == pytest.approx((1 / 2 + 3 / 4) / 2)


def test_unpaired_scores_are_refused():
    with pytest.raises(ValueError, match="same images"):
        paired_difference(np.zeros(3), np.zeros(4), mean_of_images)
