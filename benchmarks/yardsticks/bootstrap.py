"""Paired bootstrap intervals over images: is recipe B better than recipe A on this set of images, or is the
difference what another draw of the same number of images could give?

Both recipes are scored on the same images, so the images are resampled together (paired): an easy image
is easy for both, and the interval is that of the difference, much narrower than two separate intervals.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Difference:
    """B's score minus A's on the images, with the bootstrap interval of that difference."""
    value: float
    low: float
    high: float

    @property
    def holds(self) -> bool:
        """The interval excludes 0: the sign of the difference is not an accident of the images drawn."""
        return self.low > 0 or self.high < 0


def paired_difference(a: np.ndarray, b: np.ndarray, statistic: Callable[[np.ndarray], float],
                      resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> Difference:
    """statistic(b) - statistic(a) and its percentile interval over `resamples` draws of the images (rows of
    `a` and `b`, per-image values or per-image counts that `statistic` reduces), with replacement."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or not len(a):
        raise ValueError(f"paired scores need the same images: {a.shape} against {b.shape}")
    draws = np.random.default_rng(seed).integers(0, len(a), size=(resamples, len(a)))
    differences = np.array([statistic(b[rows]) - statistic(a[rows]) for rows in draws])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return Difference(statistic(b) - statistic(a), float(low), float(high))


def mean_of_images(values: np.ndarray) -> float:
    """The mean of a per-image score (the real photos' and composite world's mean foreground IoU)."""
    return float(values.mean())


def dataset_miou(counts: np.ndarray) -> float:
    """Foreground / background mIoU of summed per-image counts [N, 4]: fg inter, fg union, bg inter, bg union."""
    total = counts.sum(axis=0)
    return float((total[0] / max(total[1], 1) + total[2] / max(total[3], 1)) / 2)
