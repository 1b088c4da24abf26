"""Check that every shard a stage flagged as done is really on disk, decodes, and has the right shape.

Zarr reads a missing shard file as fill values without complaint, so existence is checked file by
file; decoding catches truncated or damaged files (the shard index checksum or the codec fails).
A stage's flag covers the arrays that stage writes per shard (`core.store.flag_covers`).
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import zarr

from core.store import flag_covers, is_progress_flag, n_images, open_store, shard_count, shard_size, shard_slice


def list_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """Every array in the store by its full name, sorted."""
    return dict(sorted((name, item) for name, item in group.members(max_depth=None)
                       if isinstance(item, zarr.Array)))


def _flag_names(arrays: dict[str, zarr.Array]) -> list[str]:
    return sorted(name for name in arrays if is_progress_flag(name))


def covered_arrays(flag: str, arrays: dict[str, zarr.Array]) -> list[str]:
    """Per-image arrays written under a progress flag (`progress/<stage>/<key>`)."""
    _, stage, key = flag.split("/")
    prefixes = flag_covers(stage, key)
    return sorted(name for name in arrays
                  if any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes))


def storage_files(array: zarr.Array, rows: slice) -> list[str]:
    """Keys (relative to the array) of the shard or chunk files that hold images `rows`."""
    unit = array.shards or array.chunks
    first = rows.start // unit[0]
    last = -(-rows.stop // unit[0])
    others = [range(-(-size // step)) for size, step in zip(array.shape[1:], unit[1:])]
    return [array.metadata.encode_chunk_key((i, *rest))
            for i in range(first, last) for rest in itertools.product(*others)]


def check_shard(root: Path, name: str, array: zarr.Array, shard: int, rows: slice) -> list[str]:
    """Problems with one shard of one array: missing files, undecodable data, wrong shape."""
    problems = [f"{name}: shard {shard}: file {name}/{key} is missing"
                for key in storage_files(array, rows) if not (root / name / key).is_file()]
    try:
        data = array[rows]
    except Exception as error:  # any codec or index failure means the shard is damaged
        return problems + [f"{name}: shard {shard}: cannot decode ({type(error).__name__}: {error})"]
    expected = (rows.stop - rows.start, *array.shape[1:])
    if np.shape(data) != expected:
        problems.append(f"{name}: shard {shard}: read shape {np.shape(data)}, expected {expected}")
    return problems


def verify_store(store_path: str | Path) -> list[str]:
    """Every problem found, one line each; an empty list means the store is sound."""
    root = Path(store_path)
    group = open_store(root, mode="r")
    arrays = list_arrays(group)
    n, k = n_images(group), shard_size(group)
    n_shards = shard_count(n, k)
    problems: list[str] = []
    for flag in _flag_names(arrays):
        flags = np.asarray(arrays[flag][:], bool)
        if flags.shape != (n_shards,):
            problems.append(f"{flag}: has {flags.shape[0]} flags for {n_shards} shards")
            continue
        for name in covered_arrays(flag, arrays):
            problems += _check_done(root, name, arrays[name], flags, k, n)
    return problems


def _check_done(root: Path, name: str, array: zarr.Array, flags: np.ndarray, k: int, n: int) -> list[str]:
    if array.shape[0] != n:
        return [f"{name}: has {array.shape[0]} images, the index has {n}"]
    problems: list[str] = []
    for shard in np.flatnonzero(flags):
        problems += check_shard(root, name, array, int(shard), shard_slice(int(shard), k, n))
    return problems
