"""Cityscapes (fine annotations) for fine-tuning and evaluation: the file layout and the 19 training classes.

The layout is the dataset's own, as PaddleSeg's `Cityscapes` reads it:

    ROOT/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
    ROOT/gtFine/<split>/<city>/<name>_gtFine_labelTrainIds.png   (train ids 0-18, 255 = ignore)

PaddleSeg needs the labelTrainIds files (made by cityscapesScripts' createTrainIdLabelImgs); this
reader also takes the raw `<name>_gtFine_labelIds.png` of the download and maps each of the 34
label ids to its train id with the official table below (cityscapesScripts' helpers/labels.py),
so no conversion step is needed. Images and labels are paired by name, not by position in two
sorted listings, so a missing label is reported rather than shifting every pair after it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from training.datasets.base import DataError
from training.datasets.labelled import LabelledImages, read_index_png

IGNORE_INDEX = 255
IMAGE_SUFFIX = "_leftImg8bit.png"
TRAIN_IDS, LABEL_IDS = "labelTrainIds", "labelIds"
CITYSCAPES_LAYOUT = (f"leftImg8bit/<split>/<city>/*{IMAGE_SUFFIX} and gtFine/<split>/<city>/*_gtFine_{TRAIN_IDS}.png "
                     f"(or *_{LABEL_IDS}.png)")

# cityscapesScripts' table: (name, label id, train id, colour); train id 255 = not evaluated (ignore).
# License plate (id -1) cannot occur in a uint8 PNG; a 255 there is read as ignore.
LABELS = (
    ("unlabeled", 0, 255, (0, 0, 0)), ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)), ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)), ("dynamic", 5, 255, (111, 74, 0)), ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)), ("sidewalk", 8, 1, (244, 35, 232)), ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)), ("building", 11, 2, (70, 70, 70)), ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)), ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)), ("tunnel", 16, 255, (150, 120, 90)), ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)), ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)), ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)), ("sky", 23, 10, (70, 130, 180)), ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)), ("car", 26, 13, (0, 0, 142)), ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)), ("caravan", 29, 255, (0, 0, 90)), ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)), ("motorcycle", 32, 17, (0, 0, 230)), ("bicycle", 33, 18, (119, 11, 32)),
)
NUM_LABEL_IDS = len(LABELS)  # 34: ids 0-33
TRAINED = sorted((train_id, name, colour) for name, _, train_id, colour in LABELS if train_id != IGNORE_INDEX)
CITYSCAPES_CLASSES = tuple(name for _, name, _ in TRAINED)  # road, sidewalk, ..., bicycle: train ids 0-18


def train_id_lookup() -> np.ndarray:
    """[256] uint8: label id -> train id (255 for every id that is not trained on, and for 255 itself)."""
    lookup = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for _, label_id, train_id, _ in LABELS:
        lookup[label_id] = train_id
    return lookup


def cityscapes_palette() -> np.ndarray:
    """[256, 3] uint8: the official colour of each train id; black for ignore and unused indices."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for train_id, _, colour in TRAINED:
        palette[train_id] = colour
    return palette


class CityscapesDataError(DataError):
    """Cityscapes files that are missing or unusable; the message says where and what is expected."""


def check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not (root / "leftImg8bit").is_dir() or not (root / "gtFine").is_dir():
        raise CityscapesDataError(f"Cityscapes not found at {root}: it must hold {CITYSCAPES_LAYOUT}")
    return root


def label_path(root: Path, split: str, image: Path, kind: str) -> Path:
    name = image.name.removesuffix(IMAGE_SUFFIX)
    return root / "gtFine" / split / image.parent.name / f"{name}_gtFine_{kind}.png"


def find_pairs(root: Path, split: str, labels: str) -> list[tuple[Path, Path]]:
    """(image, label) of every image of `split`, sorted by path as PaddleSeg lists them.

    `labels`: labelTrainIds, labelIds, or auto (per image, labelTrainIds where it exists, else labelIds).
    """
    images = sorted((root / "leftImg8bit" / split).glob(f"*/*{IMAGE_SUFFIX}"), key=str)
    if not images:
        raise CityscapesDataError(f"no images of split {split!r}: {root / 'leftImg8bit' / split} holds no "
                                  f"<city>/*{IMAGE_SUFFIX}")
    kinds = (TRAIN_IDS, LABEL_IDS) if labels == "auto" else (labels,)
    pairs, missing = [], []
    for image in images:
        candidates = [label_path(root, split, image, kind) for kind in kinds]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            missing.append(candidates[0])
        else:
            pairs.append((image, found))
    if missing:
        raise CityscapesDataError(f"{len(missing)} of {len(images)} images of split {split!r} have no label, "
                                  f"e.g. {missing[0]} (data.labels={labels})")
    return pairs


def read_cityscapes_label(path: Path) -> np.ndarray:
    """Train ids (HxW uint8, 255 = ignore) of a labelTrainIds file, or of a labelIds file mapped by LABELS."""
    if path.name.endswith(f"_{LABEL_IDS}.png"):
        return train_id_lookup()[read_index_png(path, NUM_LABEL_IDS, IGNORE_INDEX, CityscapesDataError)]
    return read_index_png(path, len(CITYSCAPES_CLASSES), IGNORE_INDEX, CityscapesDataError)


class CityscapesSegmentation(LabelledImages):
    """One split of ROOT; `samples_per_epoch` stretches it to an iteration-counted schedule (LabelledImages)."""

    error = CityscapesDataError

    def __init__(self, root: str | Path, split: str, transforms, labels: str = "auto", seed: int = 0,
                 samples_per_epoch: int | None = None):
        self.root, self.split = check_root(root), split
        super().__init__(find_pairs(self.root, split, labels), transforms, seed, samples_per_epoch)

    def read_label(self, path: Path) -> np.ndarray:
        return read_cityscapes_label(path)
