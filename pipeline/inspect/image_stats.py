"""Per-image numbers a person sorts labels by: foreground and ignore share, mean confidence weight.

`label_shares` works on one block of labels (the gallery's shard task calls it); `label_statistics`
runs it over the whole store as a dask reduction over whole shards, so memory holds one shard's labels
per thread and three numbers per image.
"""
from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import zarr

from core.store import FOREGROUND, IGNORE, MASK, WEIGHT, WEIGHT_SCALE, labelled_images, n_images

SHARES = ("fg_share", "ignore_share", "mean_weight")


def label_shares(mask: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """float32 [B, 3]: foreground share, ignore share (of all pixels) and the mean weight over decided pixels
    (NaN where none is decided) of labels [B, S, S]."""
    b = len(mask)
    mask, weight = mask.reshape(b, -1), weight.reshape(b, -1)
    decided = mask != IGNORE
    n_decided = decided.sum(axis=1)
    weight_sum = np.where(decided, weight.astype(np.float64), 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_weight = np.where(n_decided > 0, weight_sum / WEIGHT_SCALE / n_decided, np.nan)
    return np.stack([(mask == FOREGROUND).mean(axis=1), (~decided).mean(axis=1), mean_weight],
                    axis=1).astype(np.float32)


def label_statistics(group: zarr.Group) -> np.ndarray:
    """float32 [N, 3] (SHARES) of every labelled image (fused shard, status ok); NaN rows for the others."""
    n = n_images(group)
    out = np.full((n, len(SHARES)), np.nan, np.float32)
    use = labelled_images(group)
    if not use.any() or MASK not in group:
        return out
    mask_array, weight_array = group[MASK], group[WEIGHT]
    mask = da.from_zarr(mask_array, chunks=mask_array.shards)
    weight = da.from_zarr(weight_array, chunks=weight_array.shards)
    shares = da.map_blocks(lambda m, w: label_shares(m, w), mask, weight, dtype=np.float32,
                           chunks=(mask.chunks[0], (len(SHARES),)), drop_axis=[1, 2], new_axis=[1])
    with dask.config.set(scheduler="threads"):
        computed = shares.compute()
    out[use] = computed[use]
    return out
