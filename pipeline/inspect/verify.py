"""`inspect --verify`: every shard a stage flagged as done, checked by `core.store_check` (files
present and whole; `full` also decodes every chunk). A stage's flag covers the arrays that stage
writes per shard (`core.store.flag_covers`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from core.store import is_progress_flag, n_images, open_store, shard_count, shard_size
from core.store_check import covered_names, damaged_shards, list_arrays


def _flag_names(arrays: dict[str, zarr.Array]) -> list[str]:
    return sorted(name for name in arrays if is_progress_flag(name))


def verify_store(store_path: str | Path, full: bool = False) -> list[str]:
    """Every problem found, one line each; an empty list means the store is sound. Never raises for a
    damaged array: an unreadable flag or index is itself reported."""
    root = Path(store_path)
    group = open_store(root, mode="r")
    arrays = list_arrays(group)
    try:
        n, k = n_images(group), shard_size(group)
    except Exception as error:  # noqa: BLE001 - a store without a readable layout is reported, not raised
        return [f"store layout unreadable ({type(error).__name__}: {error})"]
    n_shards = shard_count(n, k)
    problems: list[str] = []
    for flag in _flag_names(arrays):
        try:
            flags = np.asarray(arrays[flag][:], bool)
        except Exception as error:  # noqa: BLE001 - damage is reported, never raised
            problems.append(f"{flag}: unreadable ({type(error).__name__}: {error})")
            continue
        if flags.shape != (n_shards,):
            problems.append(f"{flag}: has {flags.shape[0]} flags for {n_shards} shards")
            continue
        _, stage, key = flag.split("/")
        for name in covered_names(arrays, stage, key):
            if arrays[name].shape[0] != n:
                problems.append(f"{name}: has {arrays[name].shape[0]} images, the index has {n}")
                continue
            found = damaged_shards(root, group, [name], np.flatnonzero(flags), k, n, full)
            problems += [line for shard in sorted(found) for line in found[shard]]
    return list(dict.fromkeys(problems))  # an array covered by two flags (index/target) is listed once
