"""`finetune-cityscapes` and `eval-cityscapes`: the shared fine-tuning driver (training/finetune.py) on
Cityscapes' fine annotations, 19 classes, scored on the whole 2048x1024 val images."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from core.schema import CityscapesFinetuneConfig
from training import finetune
from training.cityscapes import CITYSCAPES_CLASSES, CityscapesSegmentation, cityscapes_palette
from training.datasets.transforms import Compose


def cityscapes_dataset(config: CityscapesFinetuneConfig, which: str, transforms: Compose, seed: int = 0,
                       samples_per_epoch: int | None = None) -> CityscapesSegmentation:
    """The `train` or `val` split named in the `data` section."""
    data = config.data
    return CityscapesSegmentation(data.root, getattr(data, f"{which}_split"), transforms, labels=data.labels,
                                  seed=seed, samples_per_epoch=samples_per_epoch)


CITYSCAPES = finetune.DownstreamTask(
    name="Cityscapes", command="finetune-cityscapes", schema=CityscapesFinetuneConfig, dataset=cityscapes_dataset,
    class_names=lambda config: CITYSCAPES_CLASSES, palette=cityscapes_palette(), background=None)


def run(config: CityscapesFinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    return finetune.run(config, CITYSCAPES, model)


def run_eval(config: CityscapesFinetuneConfig | dict, model: nn.Module | None = None) -> Path:
    return finetune.run_eval(config, CITYSCAPES, model)
