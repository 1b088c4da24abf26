"""Training samples from this project's store: the image, and its PSSL mask/weight mapped back onto it.

The stored maps cover the whole image resized to S x S, so each is resized to the image's own size
(nearest for the mask, bilinear for the weight) before the joint augmentations. Only rows with
status ok, a target class and a fused shard are used (and, with `min_target_prob`, only images whose
target the classifiers see with at least that mean probability); the others are counted in `skipped`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.store import (BACKGROUND, FOREGROUND, INDEX_PATH, INDEX_STATUS, INDEX_TARGET, MASK, STATUS_OK, WEIGHT,
                        WEIGHT_SCALE, StoreError, class_names, fused_images, n_images, open_store, shard_count,
                        shard_size)
from core.store_check import damaged_shards, repair_command
from core.target_probability import low_probability_images
from core.store import data_root as recorded_data_root
from training.datasets.base import AugmentedSegmentationDataset, DataError, check_files_exist, load_image_tensor
from training.datasets.transforms import resize_label_weight


def to_class_label(mask: np.ndarray, target: int, background: int, ignore_index: int) -> torch.Tensor:
    """mask 1 -> the image's class, 0 -> background, anything else -> ignore."""
    label = np.full(mask.shape, ignore_index, dtype=np.int64)
    label[mask == FOREGROUND] = target
    label[mask == BACKGROUND] = background
    return torch.from_numpy(label)


class PsslStoreDataset(AugmentedSegmentationDataset):
    def __init__(self, store_path: str | Path, num_classes: int, ignore_index: int, transforms, seed: int = 0,
                 data_root: str | Path | None = None, check_files: bool = True, min_target_prob: float = 0.0):
        super().__init__(transforms, seed)
        self.ignore_index = int(ignore_index)
        self.store_path = Path(store_path)
        self.background = int(num_classes) - 1
        group = open_store(self.store_path, mode="r")
        if MASK not in group or WEIGHT not in group:
            raise DataError(f"store {self.store_path} has no labels ({MASK} or {WEIGHT} missing): "
                            "run the fuse stage (`make generate-labels`) first")
        root = data_root or recorded_data_root(group)
        if not root:
            raise DataError(f"store {self.store_path} does not say where its images are "
                            "(no 'data_root' attribute); set data.root=<directory>")
        self.data_root = Path(root)
        n, k = n_images(group), shard_size(group)
        self._refuse_damaged(group, [INDEX_STATUS, INDEX_TARGET, INDEX_PATH], range(shard_count(n, k)), k, n)
        status = np.asarray(group[INDEX_STATUS][:])
        target = np.asarray(group[INDEX_TARGET][:], dtype=np.int64)
        ok = status == STATUS_OK
        try:
            fused = fused_images(group)
        except StoreError as error:
            raise DataError(str(error)) from None
        has_target = target >= 0
        barely_seen = (low_probability_images(group, min_target_prob) if min_target_prob > 0
                       else np.zeros(len(target), bool))
        self.skipped = {"shard not fused": int((~fused).sum()),
                        "status not ok": int((fused & ~ok).sum()),
                        "no target class": int((fused & ok & ~has_target).sum())}
        if min_target_prob > 0:
            self.skipped[f"target probability < {min_target_prob:g}"] = int((fused & ok & has_target & barely_seen).sum())
        usable = fused & ok & has_target & ~barely_seen
        self._refuse_damaged(group, [MASK, WEIGHT], np.unique(np.flatnonzero(usable) // k), k, n)
        self._check_classes(group, target[usable], num_classes)
        self.rows = np.nonzero(usable)[0]
        if len(self.rows) == 0:
            raise DataError(f"store {self.store_path} has no usable labelled image "
                            f"(skipped: {self.describe_skipped()})")
        self.targets = target[self.rows]
        self.paths = [str(p) for p in np.asarray(group[INDEX_PATH][:])[self.rows]]
        if check_files:
            check_files_exist([self.data_root / p for p in self.paths], "image file")
        self._arrays = None  # opened lazily in each DataLoader worker

    def _refuse_damaged(self, group, names: list[str], shards, k: int, n: int) -> None:
        """A missing label shard would read as all-ignore and train on nothing: refuse, naming the shard."""
        damaged = damaged_shards(self.store_path, group, names, shards, k, n)
        if damaged:
            raise DataError(f"store {self.store_path}: {damaged[min(damaged)][0]} ({len(damaged)} damaged "
                            f"shard(s)); {repair_command(self.store_path)}")

    def _check_classes(self, group, targets: np.ndarray, num_classes: int) -> None:
        classes = class_names(group)
        if classes is not None and len(classes) > self.background:
            raise DataError(f"class count mismatch: the store has {len(classes)} classes + background "
                            f"but the config says num_classes={num_classes}")
        if len(targets) and int(targets.max()) >= self.background:
            raise DataError(f"class count mismatch: the store has target class {int(targets.max())} "
                            f"but num_classes={num_classes} leaves only 0..{self.background - 1} "
                            f"(background = {self.background})")

    def describe_skipped(self) -> str:
        return ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self):
        return {**self.__dict__, "_arrays": None}

    def load(self, index: int) -> dict:
        if self._arrays is None:
            group = open_store(self.store_path, mode="r")
            self._arrays = (group[MASK], group[WEIGHT])
        masks, weights = self._arrays
        row = int(self.rows[index])
        path = self.data_root / self.paths[index]
        image = load_image_tensor(path)
        label = to_class_label(np.asarray(masks[row]), int(self.targets[index]), self.background,
                                self.ignore_index)
        weight = torch.from_numpy(np.asarray(weights[row], dtype=np.float32) / WEIGHT_SCALE)
        label, weight = resize_label_weight(label, weight, *image.shape[-2:])
        return {"image": image, "label": label, "weight": weight, "path": str(path)}
