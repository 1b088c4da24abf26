"""How strongly the classifiers see each image's target class, and which images they barely see.

An image whose target the ensemble gives a probability near zero (a folder of motorcycles filed as
"mountain bike") is explained and labelled like any other, but its maps explain a class that is not
there. The probability is the mean over the store's models of `scores/<model>/target_prob`, counted
only on shards whose scores a flag vouches for. The pipeline flags such images (generate-labels counts
them, inspect lists them, the gallery filters them) and pre-training may leave them out
(`data.min_target_prob`); training reads this module, so it lives in core.
"""
from __future__ import annotations

import numpy as np
import zarr

from core.store import (CLASSIFY_STAGE, EXPLAIN_STAGE, INDEX_STATUS, STATUS_OK, n_images, read_flags, score_name,
                        shard_count, shard_size, store_models)

# Below this the ensemble's mean softmax probability of the target (of 1000 classes) says it barely sees it:
# the sample's motorcycles-as-mountain-bike were explained at 0.002, recognised photos score 0.2-0.9.
LOW_TARGET_PROBABILITY = 0.05


def target_probability(group: zarr.Group) -> np.ndarray:
    """float32 [N]: the mean over models of the target's probability; NaN where no model's score is vouched for."""
    n, k = n_images(group), shard_size(group)
    total, counted = np.zeros(n, np.float64), np.zeros(n, np.int32)
    for model in store_models(group):
        if score_name(model) not in group:
            continue
        flags = read_flags(group, EXPLAIN_STAGE, model, shard_count(n, k)) | read_flags(
            group, CLASSIFY_STAGE, model, shard_count(n, k))
        scored = np.repeat(flags, k)[:n]
        total += np.where(scored, np.asarray(group[score_name(model)][:], np.float64), 0.0)
        counted += scored
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, total / counted, np.nan).astype(np.float32)


def is_low(probability: np.ndarray, status: np.ndarray, threshold: float = LOW_TARGET_PROBABILITY) -> np.ndarray:
    """bool [N]: images with status ok whose target probability is known and below `threshold`."""
    return (status == STATUS_OK) & ~np.isnan(probability) & (probability < threshold)


def low_probability_images(group: zarr.Group, threshold: float = LOW_TARGET_PROBABILITY) -> np.ndarray:
    """bool [N]: `is_low` for every image of the store."""
    return is_low(target_probability(group), np.asarray(group[INDEX_STATUS][:]), threshold)
