"""File layouts the rest of the project already reads: torchvision ImageFolder and Pascal VOC 2012 + Aug.

ImageFolder: <root>/classification/<split>/<class>/<id>.png, and its masks kept apart in
<root>/classification_masks/<split>/<class>/<id>.png (0 background, 1 object) so no training code
can see them by accident. VOC: <root>/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass,
SegmentationClassAug, ImageSets/Segmentation}; class ids 1..K follow the ImageFolder order.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from training.palette import voc_palette

IGNORE = 255
VOC_PALETTE = voc_palette().flatten().tolist()


def classification_image_path(root: Path, split: str, class_name: str, image_id: str) -> Path:
    return root / "classification" / split / class_name / f"{image_id}.png"


def classification_mask_path(root: Path, split: str, class_name: str, image_id: str) -> Path:
    return root / "classification_masks" / split / class_name / f"{image_id}.png"


def voc_dir(root: Path) -> Path:
    return root / "VOCdevkit" / "VOC2012"


def write_png(path: Path, array: np.ndarray, palette: list[int] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if palette is not None:
        image.putpalette(palette)  # turns the grey-level image into palette indices, values unchanged
    image.save(path, format="PNG", optimize=False)


def write_classification(root: Path, split: str, class_name: str, image_id: str,
                         image: np.ndarray, labels: np.ndarray) -> None:
    write_png(classification_image_path(root, split, class_name, image_id), image)
    write_png(classification_mask_path(root, split, class_name, image_id), (labels > 0).astype(np.uint8))


def with_ignore_border(labels: np.ndarray, width: int) -> np.ndarray:
    """Mark pixels within `width` of a label change as 255, as VOC's hand labels do at object edges."""
    if width <= 0:
        return labels
    edges = np.zeros(labels.shape, dtype=bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    band = ndimage.binary_dilation(edges, iterations=width) if width > 1 else edges
    return np.where(band, np.uint8(IGNORE), labels)


def write_voc_image(root: Path, image_id: str, image: np.ndarray, labels: np.ndarray, *,
                    in_voc: bool, ignore_border: int, jpeg_quality: int) -> None:
    """JPEG image; Aug labels as grey-level PNGs (as SBD's conversion ships them); VOC labels as palette PNGs."""
    base = voc_dir(root)
    (base / "JPEGImages").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", format="JPEG", quality=jpeg_quality)
    write_png(base / "SegmentationClassAug" / f"{image_id}.png", labels)
    if in_voc:
        write_png(base / "SegmentationClass" / f"{image_id}.png", with_ignore_border(labels, ignore_border),
                  palette=VOC_PALETTE)


def write_voc_lists(root: Path, lists: dict[str, list[str]]) -> None:
    folder = voc_dir(root) / "ImageSets" / "Segmentation"
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in lists.items():
        (folder / f"{name}.txt").write_text("".join(f"{image_id}\n" for image_id in ids))
