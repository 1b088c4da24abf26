"""Shared by the pre-training tests: a labelled store written by hand, a tiny real network, a config.

The store holds real PNGs whose pixels encode their own label (bright = foreground, dark =
background), so a test can check that image, label and weight still line up after augmentation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr
from PIL import Image
from torch import nn

from core.store import (FOREGROUND, FUSE_KEY, FUSE_STAGE, INDEX_CLASS_ID, INDEX_HEIGHT, INDEX_PATH, INDEX_STATUS,
                        INDEX_TARGET, INDEX_WIDTH, MASK, STATUS_OK, WEIGHT, create_store, progress_name, write_layout)
from core.store import IGNORE as MASK_IGNORE
from tests.helpers.models import TinySegNet

NUM_CLASSES, IGNORE = 1001, 1001
BACKGROUND = NUM_CLASSES - 1
FG_WEIGHT, BG_WEIGHT = 255, 128  # stored uint8 weights
BRIGHT, DARK = 230, 20


def write_store(root: Path, n: int = 6, shard: int = 2, map_size: int = 16, image_size=(40, 60),
                status=None, fused=None, labels: bool = True, targets=None) -> Path:
    """A store as the fuse stage leaves it: foreground = left half, top map row ignore.

    `fused` lists the fused shards (default all); `status` and `targets` override per-image values.
    """
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    height, width = image_size
    paths = []
    for i in range(n):
        pixels = np.full((height, width, 3), DARK, np.uint8)
        pixels[:, : width // 2] = BRIGHT
        pixels[..., 2] = i * 10  # each image differs
        name = f"n{i:08d}_{i}.png"
        Image.fromarray(pixels).save(images / name)
        paths.append(name)
    group = create_store(root / "pssl.zarr", {})
    write_layout(group, data_root=str(images), shard_size=shard, map_size=map_size)
    n_shards = -(-n // shard)
    index = {INDEX_PATH: np.array(paths, dtype=str),
             INDEX_STATUS: np.asarray(status if status is not None else [STATUS_OK] * n, np.uint8),
             INDEX_CLASS_ID: np.arange(n, dtype=np.int16) * 7,
             INDEX_TARGET: np.asarray(targets if targets is not None else np.arange(n) * 7, np.int16),
             INDEX_HEIGHT: np.full(n, height, np.int32), INDEX_WIDTH: np.full(n, width, np.int32)}
    for name, values in index.items():
        group.create_array(name, shape=(n,), dtype=values.dtype, chunks=(shard,))[:] = values
    if labels:
        mask = np.zeros((n, map_size, map_size), np.uint8)
        mask[:, :, : map_size // 2] = FOREGROUND
        mask[:, 0, :] = MASK_IGNORE
        weight = np.where(mask == FOREGROUND, FG_WEIGHT, BG_WEIGHT).astype(np.uint8)
        weight[mask == MASK_IGNORE] = 0
        for name, values in ((MASK, mask), (WEIGHT, weight)):
            group.create_array(name, shape=values.shape, dtype=np.uint8, chunks=(1, map_size, map_size),
                               shards=(shard, map_size, map_size))[:] = values
        flags = np.zeros(n_shards, bool)
        flags[list(range(n_shards)) if fused is None else list(fused)] = True
        group.create_array(progress_name(FUSE_STAGE, FUSE_KEY), shape=(n_shards,), dtype=bool,
                           chunks=(1,))[:] = flags
    return root / "pssl.zarr"


def tiny_pretrain_net(num_classes: int = NUM_CLASSES) -> nn.Module:
    """The tiny network the pre-training tests train: stride 2, with an auxiliary head like the real ones."""
    return TinySegNet(num_classes, width=8, stride=2, aux_head=True)


def augment_section(crop: int | None = 32, flip: float = 0.5, color: bool = True) -> dict:
    return {"resize_by_short": 32 if crop else None, "scale": [0.5, 2.0] if crop else None, "crop": crop,
            "image_pad": 127.5, "flip_prob": flip,
            "color": {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "prob": 0.5} if color else None,
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def train_section(**overrides) -> dict:
    section = {"epochs": 2, "batch_size": 2, "accumulate": 1, "lr": 0.01, "backbone_lr_mult": 0.1,
               "momentum": 0.9, "weight_decay": 4e-5, "schedule": "poly", "power": 0.9, "warmup_steps": 1,
               "warmup_start_factor": 0.1, "amp": True, "workers": 0, "seed": 0,
               "checkpoint_every_steps": 0, "checkpoint_every_epochs": 1, "log_every_steps": 1,
               "image_every_steps": 2, "max_steps": None}
    section.update(overrides)
    return section


def pretrain_config(store: Path, out_dir: Path, model: str = "stdc1_seg", **train) -> dict:
    return {"run": {"out_dir": str(out_dir), "resume": "auto"}, "num_classes": NUM_CLASSES,
            "ignore_index": IGNORE,
            "data": {"format": "store", "store": str(store), "root": None, "check_files": True},
            "augment": augment_section(), "model": {"name": model, "backbone_weights": None},
            "loss": {"background_alpha": 0.1, "head_weights": None, "detail_weight": 1.0},
            "train": train_section(**train)}

