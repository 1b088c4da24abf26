"""Pascal VOC 2012 (+ SBD "Aug" labels) for fine-tuning and evaluation: files and label decoding.

Labels are class indices: palette PNGs are decoded by their palette INDEX (the VOC files' colours
are only a rendering of it) and 8-bit grayscale PNGs (how SBD-converted Aug labels often come) are
read as they are (`training.datasets.labelled`). 255 marks ignored pixels (object boundaries, crop
padding). Augmentation is the shared, seeded pipeline of `training.datasets.transforms`, so
fine-tuning resumes as exactly as pre-training does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.datasets.base import DataError
from training.datasets.labelled import LabelledImages, read_index_png

NUM_VOC_CLASSES = 21
IGNORE_INDEX = 255  # VOC's own value for object boundaries and "difficult" pixels

VOC_LAYOUT = (
    "VOC_ROOT/VOC2012/ (VOC_ROOT may be the VOCdevkit folder or VOC2012 itself) must hold "
    "JPEGImages/<id>.jpg, SegmentationClass/<id>.png (val, train), SegmentationClassAug/<id>.png "
    "(train_aug; palette or 8-bit grayscale index PNGs, 255 = ignore) and "
    "ImageSets/Segmentation/{train_aug,train,val}.txt (one image id per line)"
)


class VOCDataError(DataError):
    """Pascal VOC files that are missing or unusable; the message says where and what is expected."""


def resolve_voc_dir(root: str | Path) -> Path:
    """Return the VOC2012 folder under `root` (VOCdevkit, its parent, or VOC2012 itself)."""
    root = Path(root).expanduser()
    for candidate in (root / "VOC2012", root / "VOCdevkit" / "VOC2012", root):
        if (candidate / "JPEGImages").is_dir() and (candidate / "ImageSets" / "Segmentation").is_dir():
            return candidate
    raise VOCDataError(f"Pascal VOC 2012 not found at {root}: {VOC_LAYOUT}")


def read_split_ids(voc_dir: Path, split: str) -> list[str]:
    list_file = voc_dir / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not list_file.is_file():
        raise VOCDataError(f"split list {list_file} not found: {VOC_LAYOUT}")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if not ids:
        raise VOCDataError(f"split list {list_file} is empty")
    return ids


def read_label(path: str | Path, num_classes: int = NUM_VOC_CLASSES) -> np.ndarray:
    """HxW uint8 class indices of a palette or grayscale PNG; values other than 0..C-1 and 255 are an error."""
    return read_index_png(path, num_classes, IGNORE_INDEX, VOCDataError)


class VOCSegmentation(LabelledImages):
    """One VOC split, as the `ids` of its list file; `samples_per_epoch` stretches it (LabelledImages)."""

    error = VOCDataError

    def __init__(self, root: str | Path, split: str, label_dir: str, transforms, seed: int = 0,
                 num_classes: int = NUM_VOC_CLASSES, samples_per_epoch: int | None = None):
        self.voc_dir = resolve_voc_dir(root)
        self.split, self.num_classes = split, num_classes
        self.ids = read_split_ids(self.voc_dir, split)
        self.image_dir, self.label_dir = self.voc_dir / "JPEGImages", self.voc_dir / label_dir
        if not self.label_dir.is_dir():
            raise VOCDataError(f"label folder {self.label_dir} not found (split {split!r}): {VOC_LAYOUT}")
        pairs = [(self.image_path(image_id), self.label_path(image_id)) for image_id in self.ids]
        missing = [path for pair in pairs for path in pair if not path.is_file()]
        if missing:
            raise VOCDataError(f"{len(missing)} files of split {split!r} are missing, e.g. {missing[0]}: "
                               f"{VOC_LAYOUT}")
        super().__init__(pairs, transforms, seed, samples_per_epoch)

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def label_path(self, image_id: str) -> Path:
        return self.label_dir / f"{image_id}.png"

    def read_label(self, path: Path) -> np.ndarray:
        return read_label(path, self.num_classes)
