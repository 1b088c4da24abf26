"""Index stage: record every image (path, class, size, status) in the store, decoding each once.

Decoding happens in Ray tasks, one per shard of images; the driver alone writes the index arrays,
so a re-run skips shards already validated and a changed dataset is refused rather than mixed in.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import ray
import zarr

from core.config import recorded, typed
from core.images import BadImage, load_rgb
from core.schema import PipelineConfig
from core.store import (INDEX_CLASS_ID, INDEX_CLASS_SOURCE, INDEX_ERROR, INDEX_HEIGHT, INDEX_KEY, INDEX_PATH,
                        INDEX_STAGE, INDEX_STATUS, INDEX_WIDTH, STATUS_BAD, STATUS_OK, create_index_arrays,
                        create_store, done_shards, is_indexed, map_size, mark_bad, mark_done, n_images,
                        record_config, shard_count, shard_size, shard_slice, write_layout)
from core.store_check import damaged_shards, report_redone, unflag_damaged
from pipeline.index.sources import DatasetError, Listing, enumerate_images

VANISHED = "since indexing: file not found"


@ray.remote(num_cpus=1, max_retries=3)
def validate_images(root: str, paths: list[str], min_side: int, max_pixels: int) -> list[tuple]:
    """(status, height, width, reason) for each path; never raises for a bad image."""
    results = []
    for path in paths:
        try:
            rgb = load_rgb(Path(root) / path, min_side=min_side, max_pixels=max_pixels)
            results.append((STATUS_OK, rgb.shape[0], rgb.shape[1], ""))
        except BadImage as error:
            results.append((STATUS_BAD, 0, 0, str(error)))
    return results


def run(config: PipelineConfig | dict, store_path: Path, progress, listing: Listing | None = None) -> zarr.Group:
    """Create or reopen the store and validate the images of shards not yet indexed."""
    config = typed(config, PipelineConfig)
    listing = listing or enumerate_images(config, store_path.parent)
    root, k = listing.root, config.store.shard_size
    group = create_store(store_path, recorded(config))
    if is_indexed(group):
        _repair(group, store_path, listing)
    paths = _require_index_arrays(group, listing, k, config.store.map_size)
    n = len(paths)
    record_config(group, store_path, recorded(config))
    n_shards = shard_count(n, k)
    pending = [s for s, done in enumerate(done_shards(group, INDEX_STAGE, INDEX_KEY, n_shards)) if not done]
    min_side, max_pixels = config.data.min_side, config.data.max_pixels
    futures = {validate_images.remote(str(root), paths[shard_slice(s, k, n)], min_side, max_pixels): s
               for s in pending}
    progress.begin(INDEX_STAGE, n, done=n - sum(len(paths[shard_slice(s, k, n)]) for s in pending))
    while futures:
        ready, _ = ray.wait(list(futures), num_returns=1)
        shard = futures.pop(ready[0])
        rows = ray.get(ready[0])
        selection = shard_slice(shard, k, n)
        status, height, width, reason = (np.array(column) for column in zip(*rows))
        group[INDEX_STATUS][selection] = status.astype(np.uint8)
        group[INDEX_HEIGHT][selection] = height.astype(np.int32)
        group[INDEX_WIDTH][selection] = width.astype(np.int32)
        group[INDEX_ERROR][selection] = reason.astype(str)
        mark_done(group, INDEX_STAGE, INDEX_KEY, shard)
        progress.advance(len(rows))
    return group


def _repair(group: zarr.Group, store_path: Path, listing: Listing) -> None:
    """Damaged index shards: what the listing gives (paths, classes) is rewritten from it, and shards whose
    validation results are damaged lose their flag, so they are validated again."""
    n, k = n_images(group), shard_size(group)
    if n == len(listing.paths):
        columns = {INDEX_PATH: np.array(listing.paths, dtype=str),
                   INDEX_CLASS_ID: np.array(listing.class_ids, dtype=np.int16),
                   INDEX_CLASS_SOURCE: np.array(listing.class_sources, dtype=np.uint8)}
        damaged = damaged_shards(store_path, group, list(columns), range(shard_count(n, k)), k, n)
        report_redone(INDEX_STAGE, damaged)
        for shard in damaged:
            rows = shard_slice(shard, k, n)
            for name, values in columns.items():
                group[name][rows] = values[rows]
    report_redone(INDEX_STAGE, unflag_damaged(store_path, group, [(INDEX_STAGE, INDEX_KEY)],
                                              [INDEX_STATUS, INDEX_HEIGHT, INDEX_WIDTH, INDEX_ERROR], k, n))


def check_accepted(group: zarr.Group, listing: Listing, k: int, size: int) -> list[str]:
    """Refuse a shard size, map size or image list other than the indexed store's; returns its paths.
    Writes nothing, so it can run before any stage."""
    for key, made_with, wanted in (("shard_size", shard_size(group), k), ("map_size", map_size(group), size)):
        if made_with != wanted:
            raise DatasetError(f"store.{key}={wanted}, but this store was made with store.{key}={made_with}: "
                               "use that value or a new run name (run.name=...)")
    recorded = [str(p) for p in group[INDEX_PATH][:]]
    present = set(listing.paths)
    if recorded != listing.paths and [p for p in recorded if p in present] != listing.paths:
        raise DatasetError(f"the images under {listing.root} changed since this store was indexed; "
                           "use a new run name (run.name=...)")
    return recorded


def _require_index_arrays(group: zarr.Group, listing: Listing, k: int, size: int) -> list[str]:
    """Write the index of a new store, or check the listing against an indexed one; returns the store's paths.

    Files that vanished since indexing are recorded as bad (the rest of their shard is kept); any other
    change of the image list is refused.
    """
    root, paths = listing.root, listing.paths
    if is_indexed(group):
        recorded, present = check_accepted(group, listing, k, size), set(paths)
        mark_bad(group, {i: VANISHED for i, p in enumerate(recorded) if p not in present})
        return recorded
    write_layout(group, data_root=str(root.resolve()), shard_size=k, map_size=size, classes=listing.classes)
    arrays = create_index_arrays(group, len(paths), overwrite=True)
    arrays[INDEX_PATH][:] = np.array(paths, dtype=str)
    arrays[INDEX_CLASS_ID][:] = np.array(listing.class_ids, dtype=np.int16)
    arrays[INDEX_CLASS_SOURCE][:] = np.array(listing.class_sources, dtype=np.uint8)
    write_layout(group, index_written=True)
    return paths
