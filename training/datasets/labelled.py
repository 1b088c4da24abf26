"""Image files paired with label PNGs of class ids: what the fine-tuning datasets (VOC, Cityscapes) share.

A label PNG holds class indices, never colours: a palette image is read by its palette INDEX, an
8-bit grayscale or a 16-bit one (values <= 255) as it is; a value that is neither a class id nor the
ignore index is refused with the file's name rather than learnt as a class. A dataset may be
stretched to `samples_per_epoch` items (item i = pair i mod N, each augmented with its own seed), so
an iteration-counted schedule like the reference's is exactly one trainer epoch.
"""
from __future__ import annotations

from abc import abstractmethod
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.images import BadImage, load_rgb
from training.datasets.base import AugmentedSegmentationDataset, DataError


def read_index_png(path: str | Path, num_classes: int, ignore_index: int,
                   error: type[DataError] = DataError) -> np.ndarray:
    """HxW uint8 class indices of a palette or grayscale PNG; values other than 0..C-1 and `ignore_index`
    raise `error` naming the file."""
    try:
        with Image.open(path) as image:
            if image.mode in ("P", "L"):
                label = np.array(image)  # a "P" image's array holds palette indices, not colours
            elif image.mode in ("I", "I;16", "I;16L", "I;16B"):
                label = np.array(image)
                if label.max(initial=0) > 255:
                    raise error(f"label {path}: values above 255 in a 16-bit PNG")
                label = label.astype(np.uint8)
            else:
                raise error(f"label {path}: mode {image.mode} is not an index PNG "
                            "(expected a palette or 8-bit grayscale PNG of class ids)")
    except FileNotFoundError:
        raise error(f"label {path} not found") from None
    except OSError as problem:
        raise error(f"label {path} unreadable: {problem}") from None
    invalid = (label >= num_classes) & (label != ignore_index)
    if invalid.any():
        values = sorted(set(np.unique(label[invalid]).tolist()))[:5]
        raise error(f"label {path}: values {values} are neither a class id < {num_classes} "
                    f"nor {ignore_index} (ignore)")
    return label


class LabelledImages(AugmentedSegmentationDataset):
    """(image file, label file) pairs; items are the trainer's dicts (image, label, weight = 1, path).

    Subclasses find the pairs and say how a label file becomes class ids (`read_label`); `error` is the
    DataError subclass their messages are raised as.
    """

    error: type[DataError] = DataError

    def __init__(self, pairs: list[tuple[Path, Path]], transforms, seed: int = 0,
                 samples_per_epoch: int | None = None):
        super().__init__(transforms, seed)
        self.pairs = pairs
        self.samples_per_epoch = samples_per_epoch

    @abstractmethod
    def read_label(self, path: Path) -> np.ndarray:
        """HxW uint8 class ids (255 = ignore) of one label file."""

    def __len__(self) -> int:
        return self.samples_per_epoch or len(self.pairs)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The unaugmented RGB image (HxWx3 uint8) and label (HxW uint8) of item `index`."""
        image_path, label_path = self.pairs[index % len(self.pairs)]
        try:
            image = load_rgb(image_path, min_side=1)
        except BadImage as problem:
            raise self.error(f"image {image_path}: {problem}") from None
        label = self.read_label(label_path)
        if image.shape[:2] != label.shape:
            raise self.error(f"{image_path.name}: image is {image.shape[1]}x{image.shape[0]} but its label "
                             f"{label_path.name} is {label.shape[1]}x{label.shape[0]}")
        return image, label

    def load(self, index: int) -> dict:
        image, label = self.raw(index)
        return {"image": torch.from_numpy(image).permute(2, 0, 1).float(),
                "label": torch.from_numpy(label.astype(np.int64)),
                "weight": torch.ones(label.shape, dtype=torch.float32),  # every ground-truth label is trusted
                "path": str(self.pairs[index % len(self.pairs)][0])}
