"""Pascal VOC 2012 (+ SBD "Aug" labels) for fine-tuning and evaluation: files and label decoding.

Labels are class indices: palette PNGs are decoded by their palette INDEX (the VOC files' colours
are only a rendering of it) and 8-bit grayscale PNGs (how SBD-converted Aug labels often come) are
read as they are. 255 marks ignored pixels (object boundaries, crop padding). Augmentation is the
shared, seeded pipeline of `training.datasets.transforms`, so fine-tuning resumes as exactly as
pre-training does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.images import BadImage, load_rgb
from training.datasets.base import AugmentedSegmentationDataset, DataError

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
    try:
        with Image.open(path) as image:
            if image.mode in ("P", "L"):
                label = np.array(image)  # a "P" image's array holds palette indices, not colours
            elif image.mode in ("I", "I;16", "I;16L", "I;16B"):
                label = np.array(image)
                if label.max(initial=0) > 255:
                    raise VOCDataError(f"label {path}: values above 255 in a 16-bit PNG")
                label = label.astype(np.uint8)
            else:
                raise VOCDataError(f"label {path}: mode {image.mode} is not an index PNG "
                                   "(expected a palette or 8-bit grayscale PNG of class ids)")
    except FileNotFoundError:
        raise VOCDataError(f"label {path} not found") from None
    except OSError as error:
        raise VOCDataError(f"label {path} unreadable: {error}") from None
    invalid = (label >= num_classes) & (label != IGNORE_INDEX)
    if invalid.any():
        values = sorted(set(np.unique(label[invalid]).tolist()))[:5]
        raise VOCDataError(f"label {path}: values {values} are neither a class id < {num_classes} "
                           f"nor {IGNORE_INDEX} (ignore)")
    return label


class VOCSegmentation(AugmentedSegmentationDataset):
    """One VOC split; items are the trainer's dicts (image, label with 255 = ignore, weight = 1, path).

    `samples_per_epoch` stretches the split to that length (item i is image i mod N, augmented with
    its own seed), so an iteration-counted schedule like the reference's 40k steps is exactly one
    trainer epoch, with the poly decay spanning exactly those steps.
    """

    def __init__(self, root: str | Path, split: str, label_dir: str, transforms, seed: int = 0,
                 num_classes: int = NUM_VOC_CLASSES, samples_per_epoch: int | None = None):
        super().__init__(transforms, seed)
        self.samples_per_epoch = samples_per_epoch
        self.voc_dir = resolve_voc_dir(root)
        self.split, self.num_classes = split, num_classes
        self.ids = read_split_ids(self.voc_dir, split)
        self.image_dir, self.label_dir = self.voc_dir / "JPEGImages", self.voc_dir / label_dir
        if not self.label_dir.is_dir():
            raise VOCDataError(f"label folder {self.label_dir} not found (split {split!r}): {VOC_LAYOUT}")
        missing = [path for image_id in self.ids
                   for path in (self.image_path(image_id), self.label_path(image_id)) if not path.is_file()]
        if missing:
            raise VOCDataError(f"{len(missing)} files of split {split!r} are missing, e.g. {missing[0]}: "
                               f"{VOC_LAYOUT}")

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def label_path(self, image_id: str) -> Path:
        return self.label_dir / f"{image_id}.png"

    def __len__(self) -> int:
        return self.samples_per_epoch or len(self.ids)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The unaugmented RGB image (HxWx3 uint8) and label (HxW uint8) of item `index`."""
        image_id = self.ids[index % len(self.ids)]
        try:
            image = load_rgb(self.image_path(image_id), min_side=1)
        except BadImage as error:
            raise VOCDataError(f"image {self.image_path(image_id)}: {error}") from None
        label = read_label(self.label_path(image_id), self.num_classes)
        if image.shape[:2] != label.shape:
            raise VOCDataError(f"{image_id}: image is {image.shape[1]}x{image.shape[0]} but its label is "
                               f"{label.shape[1]}x{label.shape[0]}")
        return image, label

    def load(self, index: int) -> dict:
        image, label = self.raw(index)
        return {"image": torch.from_numpy(image.copy()).permute(2, 0, 1).float(),
                "label": torch.from_numpy(label.astype(np.int64)),
                "weight": torch.ones(label.shape, dtype=torch.float32),  # every VOC label is trusted
                "path": str(self.image_path(self.ids[index % len(self.ids)]))}
