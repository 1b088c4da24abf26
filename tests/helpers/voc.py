"""A small generated dataset in the real VOC layout (palette and grayscale label PNGs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.datasets.transforms import Compose, Normalize
from training.palette import to_palette_png
from training.voc import IGNORE_INDEX

# Flat colours per class, so a model (or a test) can tell the class from the pixel.
CLASS_COLOURS = {0: (90, 90, 90), 1: (220, 40, 40), 8: (40, 200, 40), 15: (40, 60, 220)}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
EVAL_TRANSFORMS = Compose([Normalize(MEAN, STD)])


def write_voc(root: Path, num_images: int = 6, seed: int = 0) -> Path:
    """Write VOCdevkit/VOC2012 with flat-coloured rectangles of classes 1, 8, 15 and a 1-px ignore border.

    SegmentationClass holds palette PNGs (as VOC ships them), SegmentationClassAug 8-bit grayscale
    PNGs (as SBD conversions often are); train, val and train_aug all list every image.
    """
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    ids = []
    for index in range(num_images):
        height, width = int(rng.integers(40, 64)), int(rng.integers(48, 80))
        label = np.zeros((height, width), dtype=np.uint8)
        for class_id in rng.choice([1, 8, 15], size=2, replace=False):
            box_h, box_w = int(rng.integers(12, height // 2 + 4)), int(rng.integers(12, width // 2 + 4))
            top, left = int(rng.integers(0, height - box_h)), int(rng.integers(0, width - box_w))
            label[top:top + box_h, left:left + box_w] = IGNORE_INDEX
            label[top + 1:top + box_h - 1, left + 1:left + box_w - 1] = class_id
        image = np.zeros((height, width, 3), dtype=np.uint8)
        for class_id, colour in CLASS_COLOURS.items():
            image[label == class_id] = colour
        image[label == IGNORE_INDEX] = (128, 128, 128)
        image_id = f"2007_{index:06d}"
        Image.fromarray(image).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=100, subsampling=0)
        to_palette_png(label).save(voc / "SegmentationClass" / f"{image_id}.png")
        Image.fromarray(label, mode="L").save(voc / "SegmentationClassAug" / f"{image_id}.png")
        ids.append(image_id)
    for split in ("train", "val", "train_aug"):
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root / "VOCdevkit"
