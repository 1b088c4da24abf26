"""Free space checked before a stage writes, against an estimate of what it will write.

A disk that fills mid-stage costs a failed run (nothing half-written is flagged done: zarr writes each
file whole, and a shard's flag is set only after its task returned); a disk that cannot hold the
stage is cheaper to refuse at once. The estimates use the compressed sizes measured in docs/store.md
(sample store, 224 x 224: saliency 93 KB per image for 15 maps, labels 18.7 KB), rounded up, so the
check refuses what will not fit rather than what might.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from core.errors import PsslError

MAP_BYTES_PER_PIXEL = 0.15  # one stored map: 93 KB / 15 maps / 224^2 pixels = 0.124, rounded up
LABEL_BYTES_PER_PIXEL = 0.25  # mask + weight (+ consensus): 18.7 KB / 224^2 = 0.37 per 2 arrays, ~0.19 each


class DiskSpaceError(PsslError):
    """Less free space than a stage is estimated to write."""


def map_bytes(images: int, maps_per_image: int, size: int) -> int:
    return int(images * maps_per_image * size * size * MAP_BYTES_PER_PIXEL)


def label_bytes(images: int, arrays: int, size: int) -> int:
    return int(images * arrays * size * size * LABEL_BYTES_PER_PIXEL)


def check(folder: Path, needed: int, stage: str) -> None:
    """Refuse, in one line, a stage whose estimated writes exceed the free space under `folder`."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DiskSpaceError(f"{stage} will write about {_mb(needed)} under {folder}, which has {_mb(free)} free: "
                             "free space there, or use another run.root, and re-run")


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size < 2**30 else f"{size / 2**30:.1f} GB"
