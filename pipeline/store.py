"""The run's Zarr v3 store: array names, creation with image-aligned shards, and progress flags.

Every stage hands off through this store only. Per-image arrays are chunked one image per chunk and
sharded `shard_size` images per shard, so one task writing one shard is the only writer of its file.
Progress flags are written by the driver alone, one file per flag, after a task has returned.
"""
from __future__ import annotations

import datetime
import importlib.metadata
from pathlib import Path

import numpy as np
import zarr

STATUS_PENDING, STATUS_OK, STATUS_BAD = 0, 1, 2
UNKNOWN_CLASS = -1
PACKAGES = ("torch", "captum", "lime", "zarr", "dask", "ray", "numpy", "scikit-image")
# Write chunks even when they hold only the fill value: a finished shard then always has its file, so
# `pipeline.verify` can tell a deleted shard from an empty one (zarr reads a missing file as fill).
zarr.config.set({"array.write_empty_chunks": True})


class StoreError(RuntimeError):
    """A store that is missing, or lacks what a stage needs."""


def saliency_name(model: str, explainer: str) -> str:
    return f"saliency/{model}/{explainer}"


def scale_name(model: str, explainer: str) -> str:
    return f"saliency/{model}/{explainer}_scale"


def q99_name(model: str, explainer: str) -> str:
    """The 99th percentile of each stored map's positive part, the fuse rule's per-map scale (NaN = not stored)."""
    return f"saliency/{model}/{explainer}_q99"


def score_name(model: str) -> str:
    """Softmax probability of the target class; `top1_name` holds the model's top-1 prediction."""
    return f"scores/{model}/target_prob"


def top1_name(model: str) -> str:
    return f"scores/{model}/top1"


def prediction_name(model: str) -> str:
    """Full class probabilities, written only where the image's class is unknown (for the ensemble top-1)."""
    return f"predictions/{model}"


def progress_name(stage: str, key: str) -> str:
    return f"progress/{stage}/{key}"


def shard_count(n_images: int, shard_size: int) -> int:
    return -(-n_images // shard_size)


def shard_slice(shard: int, shard_size: int, n_images: int) -> slice:
    return slice(shard * shard_size, min((shard + 1) * shard_size, n_images))


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def open_store(path: str | Path, mode: str = "r+") -> zarr.Group:
    """Open without consolidated metadata: stages add arrays while others read."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"no Zarr store at {path} (run `make generate-labels` first)")
    return zarr.open_group(str(path), mode=mode, use_consolidated=False)


def create_store(path: str | Path, config: dict) -> zarr.Group:
    group = zarr.open_group(str(path), mode="a", use_consolidated=False)
    if "created" not in group.attrs:
        group.attrs.update(
            {
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "versions": package_versions(),
            }
        )
    group.attrs["config"] = config
    return group


def n_images(group: zarr.Group) -> int:
    return group["index/path"].shape[0]


def shard_size(group: zarr.Group) -> int:
    return int(group.attrs["shard_size"])


def require_array(group: zarr.Group, name: str, shape: tuple, dtype, per_image_chunk: tuple | None = None,
                  fill_value=0, compressors="auto") -> zarr.Array:
    """Create `name` if missing (shards of `shard_size` images) or return it after checking its shape.

    `per_image_chunk` is the shape of one image's entry; None means a 1-D per-image array,
    stored as one chunk per shard.
    """
    k = shard_size(group)
    if name in group:
        array = group[name]
        if tuple(array.shape) != tuple(shape):
            raise StoreError(f"{name} has shape {array.shape}, expected {shape}: was the store made "
                             "with another config? Use a new run name.")
        return array
    if per_image_chunk is None:
        return group.create_array(name, shape=shape, dtype=dtype, chunks=(k,), fill_value=fill_value)
    return group.create_array(name, shape=shape, dtype=dtype, chunks=(1, *per_image_chunk),
                              shards=(k, *per_image_chunk), fill_value=fill_value, compressors=compressors)


def done_shards(group: zarr.Group, stage: str, key: str, n_shards: int) -> np.ndarray:
    name = progress_name(stage, key)
    if name not in group:
        group.create_array(name, shape=(n_shards,), dtype=bool, chunks=(1,), fill_value=False,
                           compressors=None)
    return np.asarray(group[name][:], dtype=bool)


def mark_done(group: zarr.Group, stage: str, key: str, shard: int) -> None:
    group[progress_name(stage, key)][shard] = True
