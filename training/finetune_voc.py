"""`finetune-voc` and `eval-voc`: the shared fine-tuning driver (training/finetune.py) on Pascal VOC 2012 + Aug.

The train split is `data.train_split` with labels from `data.train_labels` (train_aug with
SegmentationClassAug by default), the val split likewise; `data.class_names` replaces VOC's 21 classes
for another label set written in the VOC layout.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from core.schema import FinetuneConfig
from training import finetune
from training.datasets.transforms import Compose
from training.palette import VOC_CLASSES, voc_palette
from training.voc import VOCSegmentation


def class_names(config: FinetuneConfig) -> tuple[str, ...]:
    """VOC's 21 classes unless `data.class_names` lists another label set in the same layout."""
    return tuple(config.data.class_names or VOC_CLASSES)


def voc_dataset(config: FinetuneConfig, which: str, transforms: Compose, seed: int = 0,
                samples_per_epoch: int | None = None) -> VOCSegmentation:
    """The `train` or `val` split named in the `data` section."""
    data = config.data
    return VOCSegmentation(data.root, getattr(data, f"{which}_split"), getattr(data, f"{which}_labels"), transforms,
                           seed=seed, num_classes=len(class_names(config)), samples_per_epoch=samples_per_epoch)


VOC = finetune.DownstreamTask(name="VOC", command="finetune-voc", schema=FinetuneConfig, dataset=voc_dataset,
                              class_names=class_names, palette=voc_palette(), background=0)


def run(config: FinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    return finetune.run(config, VOC, model)


def run_eval(config: FinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    return finetune.run_eval(config, VOC, model)
