"""Labels-only stores (`store.keep_maps: false`): a fused shard's maps are deleted, its labels kept.

For ImageNet the maps are most of the store (bytes per image: results/bench_store.md,
results/labels_only.md); training reads only index, scores and labels. So once a
shard's labels are written and flagged, the fuse stage sets the shard's `progress/prune/maps` flag and
then deletes its map files (saliency/ with their scale and q99, and predictions/): flag first, so an
interruption leaves at worst files that the next run deletes again, never maps missing without the
flag (which the explain stage would take for damage and redo). Store checks skip what the flag says
was dropped. Such a store cannot be fused again, with another rule or to repair labels: that is
refused in one line (explain into a new run instead).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from core.store import (PRUNE_KEY, PRUNE_STAGE, StoreError, done_shards, dropped_when_pruned, mark_done,
                        pruned_shards, shard_count, shard_slice)
from core.store_check import list_arrays, storage_files


def refuse_refusing(group: zarr.Group, n: int, k: int, shards, why: str) -> None:
    """Stop with one line when fusing `shards` again would need maps this store has dropped."""
    pruned = pruned_shards(group, shard_count(n, k))
    hit = [int(s) for s in shards if pruned[int(s)]]
    if hit:
        raise StoreError(f"fuse: {why}, but this is a labels-only store (store.keep_maps: false): the maps of "
                          f"{int(pruned.sum())} shard(s), e.g. shard {hit[0]}, were deleted after fusing; "
                          "explain again into a new run (another run.name) to fuse differently")


def drop_maps(store_path: str | Path, group: zarr.Group, shards, k: int, n: int) -> int:
    """Flag, then delete, the map files of fused `shards`; returns the number of files deleted.

    Driver-only, like every flag write; the shards' writers (fuse tasks) have returned by then."""
    shards = [int(s) for s in shards]
    if not shards:
        return 0
    done_shards(group, PRUNE_STAGE, PRUNE_KEY, shard_count(n, k))  # creates the flags on a first run
    arrays = {name: array for name, array in list_arrays(group).items() if dropped_when_pruned(name)}
    deleted = 0
    for shard in shards:
        mark_done(group, PRUNE_STAGE, PRUNE_KEY, shard)
        rows = shard_slice(shard, k, n)
        for name, array in arrays.items():
            for key in storage_files(array, rows):
                path = Path(store_path) / name / key
                if path.is_file():
                    path.unlink()
                    deleted += 1
    return deleted


def fused_not_pruned(group: zarr.Group, fused: np.ndarray, n: int, k: int) -> list[int]:
    """Fused shards whose maps are still there (keep_maps just turned off, or a run stopped before deleting)."""
    return [int(s) for s in np.flatnonzero(fused & ~pruned_shards(group, shard_count(n, k)))]
