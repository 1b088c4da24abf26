"""Pascal VOC 2012 (+ SBD "Aug" labels) for fine-tuning: files, label decoding and augmentation.

Labels are class indices: palette PNGs are decoded by their palette INDEX (the VOC files' colours
are only a rendering of it) and 8-bit grayscale PNGs (how SBD-converted Aug labels often come) are
read as they are. 255 marks ignored pixels (object boundaries, crop padding). Randomness uses
torch's generator, which DataLoader seeds per worker, so runs repeat for a fixed seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance
from torch.utils.data import Dataset

from pipeline.images import BadImage, load_rgb

IGNORE_INDEX = 255
NUM_VOC_CLASSES = 21

VOC_LAYOUT = (
    "VOC_ROOT/VOC2012/ (VOC_ROOT may be the VOCdevkit folder or VOC2012 itself) must hold "
    "JPEGImages/<id>.jpg, SegmentationClass/<id>.png (val, train), SegmentationClassAug/<id>.png "
    "(train_aug; palette or 8-bit grayscale index PNGs, 255 = ignore) and "
    "ImageSets/Segmentation/{train_aug,train,val}.txt (one image id per line)"
)


class VOCDataError(ValueError):
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


@dataclass(frozen=True)
class Normalize:
    """RGB uint8 HxWx3 -> float [3,H,W] with per-channel mean/std given on the 0..1 scale."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (tensor - mean) / std

    @property
    def pad_colour(self) -> tuple[int, int, int]:
        """The mean colour in 0..255: padding with it becomes zero after normalisation."""
        return tuple(int(round(value * 255)) for value in self.mean)


@dataclass(frozen=True)
class TrainAugment:
    """Random scale -> pad (ignore) and random crop -> horizontal flip -> colour distortion."""
    crop_size: tuple[int, int]  # (height, width)
    scale_range: tuple[float, float] = (0.5, 2.0)
    scale_step: float = 0.25  # 0 draws the scale uniformly from the range
    flip_prob: float = 0.5
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    distort_prob: float = 0.5  # each of brightness/contrast/saturation is applied with this probability

    def __call__(self, image: np.ndarray, label: np.ndarray, pad_colour) -> tuple[np.ndarray, np.ndarray]:
        picture, mask = Image.fromarray(image), Image.fromarray(label)
        scale = self._draw_scale()
        if scale != 1.0:
            size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
            picture, mask = picture.resize(size, Image.BILINEAR), mask.resize(size, Image.NEAREST)
        picture, mask = self._pad_crop(picture, mask, pad_colour)
        if _uniform() < self.flip_prob:
            picture = picture.transpose(Image.FLIP_LEFT_RIGHT)
            mask = mask.transpose(Image.FLIP_LEFT_RIGHT)
        picture = self._distort(picture)
        return np.asarray(picture), np.asarray(mask)

    def _draw_scale(self) -> float:
        low, high = self.scale_range
        if self.scale_step > 0:
            steps = int(round((high - low) / self.scale_step)) + 1
            return low + self.scale_step * int(torch.randint(steps, ()).item())
        return low + (high - low) * _uniform()

    def _pad_crop(self, picture: Image.Image, mask: Image.Image, pad_colour):
        crop_h, crop_w = self.crop_size
        if picture.width < crop_w or picture.height < crop_h:
            size = (max(crop_w, picture.width), max(crop_h, picture.height))
            padded = Image.new("RGB", size, tuple(pad_colour))
            padded.paste(picture, (0, 0))
            padded_mask = Image.new("L", size, IGNORE_INDEX)
            padded_mask.paste(mask, (0, 0))
            picture, mask = padded, padded_mask
        left = int(torch.randint(picture.width - crop_w + 1, ()).item())
        top = int(torch.randint(picture.height - crop_h + 1, ()).item())
        box = (left, top, left + crop_w, top + crop_h)
        return picture.crop(box), mask.crop(box)

    def _distort(self, picture: Image.Image) -> Image.Image:
        enhancers = [(ImageEnhance.Brightness, self.brightness), (ImageEnhance.Contrast, self.contrast),
                     (ImageEnhance.Color, self.saturation)]
        for position in torch.randperm(len(enhancers)).tolist():
            enhancer, strength = enhancers[position]
            if strength > 0 and _uniform() < self.distort_prob:
                factor = 1.0 + strength * (2 * _uniform() - 1)
                picture = enhancer(picture).enhance(factor)
        return picture


def _uniform() -> float:
    return float(torch.rand(()).item())


class VOCSegmentation(Dataset):
    """One VOC split: item i is (normalised image [3,H,W] float, label [H,W] int64 with 255 = ignore)."""

    def __init__(self, root: str | Path, split: str, label_dir: str, normalize: Normalize,
                 augment: TrainAugment | None = None, num_classes: int = NUM_VOC_CLASSES):
        self.voc_dir = resolve_voc_dir(root)
        self.split = split
        self.ids = read_split_ids(self.voc_dir, split)
        self.image_dir = self.voc_dir / "JPEGImages"
        self.label_dir = self.voc_dir / label_dir
        self.normalize, self.augment, self.num_classes = normalize, augment, num_classes
        self._check_files()

    def _check_files(self) -> None:
        if not self.label_dir.is_dir():
            raise VOCDataError(f"label folder {self.label_dir} not found (split {self.split!r}): {VOC_LAYOUT}")
        missing = [path for image_id in self.ids
                   for path in (self.image_path(image_id), self.label_path(image_id)) if not path.is_file()]
        if missing:
            raise VOCDataError(f"{len(missing)} files of split {self.split!r} are missing, e.g. {missing[0]}: "
                               f"{VOC_LAYOUT}")

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def label_path(self, image_id: str) -> Path:
        return self.label_dir / f"{image_id}.png"

    def __len__(self) -> int:
        return len(self.ids)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The unaugmented RGB image (HxWx3 uint8) and label (HxW uint8) of item `index`."""
        image_id = self.ids[index]
        try:
            image = load_rgb(self.image_path(image_id), min_side=1)
        except BadImage as error:
            raise VOCDataError(f"image {self.image_path(image_id)}: {error}") from None
        label = read_label(self.label_path(image_id), self.num_classes)
        if image.shape[:2] != label.shape:
            raise VOCDataError(f"{image_id}: image is {image.shape[1]}x{image.shape[0]} but its label is "
                               f"{label.shape[1]}x{label.shape[0]}")
        return image, label

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.raw(index)
        if self.augment is not None:
            image, label = self.augment(image, label, self.normalize.pad_colour)
        return self.normalize(image), torch.from_numpy(label.astype(np.int64))
