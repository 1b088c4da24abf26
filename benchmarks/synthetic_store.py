"""A store with the explain stage's arrays filled by synthetic maps, for tests and benchmarks of what follows.

Each image has a known object (a disc); each member's map is that disc blurred, plus member-specific
noise, stored exactly as the explain stage stores it (map / max-abs in float16, the max-abs and the
map's q99 beside it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core.imagenet_classes import imagenet_synsets
from core.store import (CLASS_FROM_WNID, CLASSIFY_STAGE, EXPLAIN_STAGE, INDEX_CLASS_ID, INDEX_CLASS_SOURCE,
                        INDEX_ERROR, INDEX_HEIGHT, INDEX_KEY, INDEX_PATH, INDEX_STAGE, INDEX_STATUS, INDEX_TARGET,
                        INDEX_WIDTH, STATUS_BAD, STATUS_OK, ENCODING, ENCODING_FULL,
                        create_index_arrays, create_store, done_shards, mark_done, q99_name, require_array,
                        saliency_name, scale_name, score_name, shard_count, shard_slice, top1_name, write_layout)
from pipeline.fuse.kernel import q99_of_maps


def object_masks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """[n, size, size] uint8 discs of random centre and radius: the known answer."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.3, 0.7, (2, n, 1, 1)) * size
    radius = rng.uniform(0.15, 0.3, (n, 1, 1)) * size
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2).astype(np.uint8)


def member_maps(masks: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Raw float32 maps: a box-blurred copy of the masks plus Gaussian noise of std `noise`."""
    blurred = masks.astype(np.float32)
    for axis in (1, 2):
        blurred = (np.roll(blurred, 2, axis) + np.roll(blurred, 1, axis) + blurred
                   + np.roll(blurred, -1, axis) + np.roll(blurred, -2, axis)) / 5.0
    return blurred + rng.normal(0.0, noise, masks.shape).astype(np.float32)


def make_synthetic_store(path: str | Path, n: int, map_size: int = 32, shard: int = 4,
                         models=("net_a", "net_b"), explainers=("gradcam", "smoothgrad"),
                         noise: float = 0.3, bad: tuple[int, ...] = (), explained: bool = True,
                         seed: int = 0) -> np.ndarray:
    """Write index, saliency, scores and explain flags for `n` images; return the known object masks.

    `bad` lists image indices recorded as bad input; `explained=False` leaves the explain flags unset.
    """
    rng = np.random.default_rng(seed)
    config = {"store": {"shard_size": shard, "map_size": map_size}}
    group = create_store(path, config)
    write_layout(group, shard_size=shard, map_size=map_size, data_root=str(path), models=list(models),
                 explainers=list(explainers), classes=list(imagenet_synsets()))
    index = create_index_arrays(group, n)
    status = np.full(n, STATUS_OK, np.uint8)
    status[list(bad)] = STATUS_BAD
    classes = rng.integers(0, 1000, n).astype(np.int16)
    wnids = imagenet_synsets()
    index[INDEX_PATH][:] = np.array([f"{wnids[c]}/{wnids[c]}_{i}.JPEG" for i, c in enumerate(classes)], dtype=object)
    index[INDEX_ERROR][:] = np.array(["unreadable: synthetic" if s == STATUS_BAD else "" for s in status],
                                     dtype=object)
    index[INDEX_CLASS_ID][:] = classes
    index[INDEX_CLASS_SOURCE][:] = CLASS_FROM_WNID
    index[INDEX_TARGET][:] = classes
    index[INDEX_HEIGHT][:] = rng.integers(map_size, 4 * map_size, n).astype(np.int32)
    index[INDEX_WIDTH][:] = rng.integers(map_size, 4 * map_size, n).astype(np.int32)
    index[INDEX_STATUS][:] = status
    done_shards(group, INDEX_STAGE, INDEX_KEY, shard_count(n, shard))
    for i in range(shard_count(n, shard)):
        mark_done(group, INDEX_STAGE, INDEX_KEY, i)

    masks = object_masks(n, map_size, rng)
    n_shards = shard_count(n, shard)
    for model in models:
        arrays = {e: (require_array(group, saliency_name(model, e), (n, map_size, map_size), np.float16,
                                    (map_size, map_size)),
                      require_array(group, scale_name(model, e), (n,), np.float32),
                      require_array(group, q99_name(model, e), (n,), np.float32, fill_value=np.nan))
                  for e in explainers}
        for saliency, _, _ in arrays.values():
            saliency.attrs[ENCODING] = ENCODING_FULL
        probability = require_array(group, score_name(model), (n,), np.float16)
        top1 = require_array(group, top1_name(model), (n,), np.int16)
        probability[:] = rng.uniform(0.05, 0.95, n).astype(np.float16)
        top1[:] = classes
        for stage in (CLASSIFY_STAGE, EXPLAIN_STAGE):
            done_shards(group, stage, model, n_shards)
        for i in range(n_shards):
            rows = shard_slice(i, shard, n)
            for explainer, (saliency, scale, q99) in arrays.items():
                raw = member_maps(masks[rows], noise, rng)
                raw[status[rows] != STATUS_OK] = 0.0
                top = np.abs(raw).reshape(len(raw), -1).max(axis=1)
                top = np.where(top > 0, top, 1.0).astype(np.float32)
                saliency[rows] = maps = (raw / top[:, None, None]).astype(np.float16)
                scale[rows] = top
                q99[rows] = q99_of_maps(maps)
            mark_done(group, CLASSIFY_STAGE, model, i)
            if explained:
                mark_done(group, EXPLAIN_STAGE, model, i)
    return masks

