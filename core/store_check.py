"""Cheap checks that the shard files a progress flag vouches for are on disk and whole.

Zarr reads a missing shard file as fill values without complaint, and a truncated one fails only
when a chunk in it is decoded, so a flag alone cannot be trusted. A sharded array's file ends with
its shard index (offset and size of every chunk, with a CRC32C): reading that tail and checking
every chunk lies inside the file finds a deleted, truncated or overwritten shard without decoding
it. Small unsharded per-image arrays (one chunk per shard) are simply decoded. `full=True` decodes
everything. Stages use this to redo damaged shards; readers (fuse, training) to refuse them.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numcodecs
import numpy as np
import zarr

from core.store import dropped_when_pruned, flag_covers, progress_name, pruned_shards, read_flags, shard_count

EMPTY_CHUNK = np.iinfo(np.uint64).max  # a chunk the shard does not hold (read as fill values)


def storage_files(array: zarr.Array, rows: slice) -> list[str]:
    """Keys (relative to the array) of the shard or chunk files that hold images `rows`."""
    unit = array.shards or array.chunks
    first = rows.start // unit[0]
    last = -(-rows.stop // unit[0])
    others = [range(-(-size // step)) for size, step in zip(array.shape[1:], unit[1:])]
    return [array.metadata.encode_chunk_key((i, *rest))
            for i in range(first, last) for rest in itertools.product(*others)]


def shard_index_problem(path: Path, array: zarr.Array) -> str | None:
    """Why a shard file is not whole (index unreadable or a chunk past the end), or None; reads only the index."""
    sharding = array.metadata.codecs[0]
    chunks = int(np.prod([s // c for s, c in zip(array.shards, sharding.chunk_shape)]))
    checksummed = any(type(codec).__name__ == "Crc32cCodec" for codec in sharding.index_codecs)
    size = chunks * 16 + (4 if checksummed else 0)
    length = path.stat().st_size
    if length < size:
        return f"{length} bytes, shorter than its shard index"
    at_end = str(sharding.index_location.value) == "end"
    with open(path, "rb") as file:
        file.seek(length - size if at_end else 0)
        raw = file.read(size)
    if checksummed:
        try:
            raw = numcodecs.CRC32C(location="end").decode(raw)
        except RuntimeError:
            return "shard index checksum mismatch (truncated or overwritten)"
    entries = np.frombuffer(raw, "<u8").reshape(chunks, 2)
    stored = entries[:, 0] != EMPTY_CHUNK
    ends = entries[stored, 0] + entries[stored, 1]
    body = (0, length - size) if at_end else (size, length)
    if stored.any() and (entries[stored, 0].min() < body[0] or ends.max() > body[1]):
        return "a chunk lies outside the file (truncated)"
    return None


def shard_problems(root: Path, name: str, array: zarr.Array, shard: int, rows: slice, full: bool = False) -> list[str]:
    """Problems with one shard of one array, one line each: missing files, damaged files, wrong shape."""
    problems = []
    for key in storage_files(array, rows):
        path = root / name / key
        if not path.is_file():
            problems.append(f"{name}: shard {shard}: file {name}/{key} is missing")
        elif array.shards and not full:
            reason = shard_index_problem(path, array)
            if reason:
                problems.append(f"{name}: shard {shard}: file {name}/{key} is damaged ({reason})")
    if problems or (array.shards and not full):
        return problems
    try:
        data = array[rows]
    except Exception as error:  # any codec or index failure means the shard is damaged
        return [f"{name}: shard {shard}: cannot decode ({type(error).__name__}: {error})"]
    expected = (rows.stop - rows.start, *array.shape[1:])
    if np.shape(data) != expected:
        return [f"{name}: shard {shard}: read shape {np.shape(data)}, expected {expected}"]
    return []


def damaged_shards(root: str | Path, group: zarr.Group, names: list[str], shards, k: int, n: int,
                   full: bool = False) -> dict[int, list[str]]:
    """{shard: problems} among `shards` for the arrays `names` that exist; absent arrays are not checked, nor the
    maps a labels-only store dropped on purpose (pipeline/fuse/labels_only.py)."""
    found: dict[int, list[str]] = {}
    pruned = pruned_shards(group, shard_count(n, k)) if any(map(dropped_when_pruned, names)) else None
    for name in names:
        if name not in group:
            continue
        array = group[name]
        for shard in shards:
            if pruned is not None and dropped_when_pruned(name) and pruned[int(shard)]:
                continue
            rows = slice(int(shard) * k, min((int(shard) + 1) * k, n))
            problems = shard_problems(Path(root), name, array, int(shard), rows, full)
            if problems:
                found.setdefault(int(shard), []).extend(problems)
    return found


def list_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """Every array in the store by its full name, sorted."""
    return dict(sorted((name, item) for name, item in group.members(max_depth=None)
                       if isinstance(item, zarr.Array)))


def covered_names(names, stage: str, key: str) -> list[str]:
    """The arrays among `names` that the progress flag (stage, key) vouches for."""
    prefixes = flag_covers(stage, key)
    return sorted(name for name in names
                  if any(name == p or (p.endswith("/") and name.startswith(p)) for p in prefixes))


def damaged_flagged(root: str | Path, group: zarr.Group, flags: list[tuple[str, str]], names: list[str], k: int,
                    n: int) -> dict[int, list[str]]:
    """{shard: problems} for shards flagged in any of `flags` whose `names` arrays are damaged."""
    flagged = np.logical_or.reduce([read_flags(group, stage, key, shard_count(n, k)) for stage, key in flags])
    return damaged_shards(root, group, names, np.flatnonzero(flagged), k, n)


def clear_flags(group: zarr.Group, flags: list[tuple[str, str]], shards) -> None:
    """Mark `shards` as not done in each of `flags`, so the stage redoes them (driver-only, like every flag write)."""
    for stage, key in flags:
        name = progress_name(stage, key)
        if len(shards) and name in group:
            values = np.asarray(group[name][:], bool)
            values[sorted(shards)] = False
            group[name][:] = values


def discard_damaged(root: str | Path, group: zarr.Group, names: list[str], shards, k: int, n: int) -> None:
    """Delete the damaged files of `names` at `shards`: zarr reads a shard file's index before writing
    into it, so a damaged one would fail the redo itself. Sound files are kept."""
    for name in (name for name in names if name in group):
        array = group[name]
        for shard in shards:
            rows = slice(int(shard) * k, min((int(shard) + 1) * k, n))
            if not shard_problems(Path(root), name, array, int(shard), rows):
                continue
            for key in storage_files(array, rows):
                path = Path(root) / name / key
                if path.is_file() and (not array.shards or shard_index_problem(path, array)):
                    path.unlink()


def unflag_damaged(root: str | Path, group: zarr.Group, flags: list[tuple[str, str]], names: list[str], k: int,
                   n: int) -> dict[int, list[str]]:
    """Clear every one of `flags` at the damaged shards `damaged_flagged` finds, discarding their damaged
    files; returns {shard: problems}."""
    damaged = damaged_flagged(root, group, flags, names, k, n)
    discard_damaged(root, group, names, list(damaged), k, n)
    clear_flags(group, flags, list(damaged))
    return damaged


def report_redone(stage: str, damaged: dict[int, list[str]]) -> None:
    """One line per damaged shard a stage is about to redo (stderr, beside the progress bar)."""
    for shard in sorted(damaged):
        print(f"{stage}: redoing damaged shard {shard}: {damaged[shard][0]}", file=sys.stderr)


def repair_command(store: str | Path) -> str:
    """What to run to repair a store: every stage redoes its damaged shards, and skips sound ones."""
    return (f"repair with `python -m pipeline generate-labels --config {Path(store).parent / 'config.yaml'}` "
            "(re-does only damaged or missing shards)")
