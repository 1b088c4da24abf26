"""Training datasets: this project's store, or the released PSSL files in PaddleSeg's layout."""
from __future__ import annotations

from core.config import ConfigError
from core.schema import PretrainData
from training.datasets.base import DataError
from training.datasets.paddleseg_pssl import PaddleSegPsslDataset
from training.datasets.pssl_store import PsslStoreDataset


def build_dataset(data: PretrainData, transforms, num_classes: int, ignore_index: int, seed: int):
    """The dataset named by `data.format` (store | paddleseg), built from the `data` section."""
    if data.format == "store":
        if not data.store:
            raise ConfigError("data.format=store needs data.store=<path of a fused store>")
        return PsslStoreDataset(data.store, num_classes, ignore_index, transforms, seed=seed, data_root=data.root,
                                check_files=data.check_files, min_target_prob=data.min_target_prob)
    if not (data.pssl_root and data.imagenet_root):
        raise ConfigError("data.format=paddleseg needs data.pssl_root and data.imagenet_root")
    return PaddleSegPsslDataset(data.pssl_root, data.imagenet_root, num_classes, ignore_index, transforms, seed=seed,
                                list_file=data.list_file, check_files=data.check_files)


__all__ = ["DataError", "PaddleSegPsslDataset", "PsslStoreDataset", "build_dataset"]
