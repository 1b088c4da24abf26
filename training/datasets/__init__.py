"""Training datasets: this project's store, or the released PSSL files in PaddleSeg's layout."""
from __future__ import annotations

from core.config import ConfigError, get
from training.datasets.base import DataError
from training.datasets.paddleseg_pssl import PaddleSegPsslDataset
from training.datasets.pssl_store import PsslStoreDataset


def build_dataset(config: dict, transforms, num_classes: int, ignore_index: int, seed: int):
    """The dataset named by `data.format` (store | paddleseg), built from the `data` section."""
    data_format = get(config, "data.format")
    check_files = bool(get(config, "data.check_files", True))
    if data_format == "store":
        return PsslStoreDataset(get(config, "data.store"), num_classes, ignore_index, transforms, seed=seed,
                                data_root=get(config, "data.root", None), check_files=check_files,
                                min_target_prob=float(get(config, "data.min_target_prob", 0.0)))
    if data_format == "paddleseg":
        return PaddleSegPsslDataset(get(config, "data.pssl_root"), get(config, "data.imagenet_root"),
                                    num_classes, ignore_index, transforms, seed=seed,
                                    list_file=get(config, "data.list_file", "train.txt"),
                                    check_files=check_files)
    raise ConfigError(f"data.format must be store or paddleseg, not {data_format!r}")


__all__ = ["DataError", "PaddleSegPsslDataset", "PsslStoreDataset", "build_dataset"]
