"""A small generated dataset in the real Cityscapes layout: leftImg8bit/ PNG images, gtFine/ label PNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.cityscapes import LABELS, train_id_lookup

# Regions drawn per image, by Cityscapes label id: road, sky, car, person (trained), parking and ego vehicle
# (label ids that are not trained on, so they become ignore), each a flat colour the network can learn.
REGION_IDS = (7, 23, 26, 24, 9, 1)
COLOURS = {label_id: colour for _, label_id, _, colour in LABELS}
COLOURS[1] = (40, 40, 40)  # ego vehicle is black in the official table, like unlabeled: give it its own
CITIES = {"train": ("aachen", "bochum"), "val": ("frankfurt",)}


def label_ids_picture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Label ids: sky above road, a car and a person on the road, a parking patch, an ego-vehicle band."""
    label = np.full((height, width), 23, dtype=np.uint8)
    horizon = int(rng.integers(height // 3, height // 2))
    label[horizon:] = 7
    for label_id in (26, 24, 9):
        box_h, box_w = int(rng.integers(4, height // 3)), int(rng.integers(6, width // 3))
        top, left = int(rng.integers(horizon - box_h // 2, height - box_h)), int(rng.integers(0, width - box_w))
        label[top:top + box_h, left:left + box_w] = label_id
    label[-2:] = 1
    return label


def write_cityscapes(root: Path, images_per_city: int = 2, size: tuple[int, int] = (64, 32), seed: int = 0,
                     train_ids: bool = True, label_ids: bool = True) -> Path:
    """Write ROOT/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png with gtFine labels beside them:
    `<name>_gtFine_labelIds.png` (raw ids) and/or `<name>_gtFine_labelTrainIds.png` (made with the table)."""
    rng = np.random.default_rng(seed)
    width, height = size
    for split, cities in CITIES.items():
        for city in cities:
            (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            (root / "gtFine" / split / city).mkdir(parents=True, exist_ok=True)
            for index in range(images_per_city):
                name = f"{city}_{index:06d}_000019"
                ids = label_ids_picture(height, width, rng)
                image = np.zeros((height, width, 3), dtype=np.uint8)
                for label_id in np.unique(ids):
                    image[ids == label_id] = COLOURS[int(label_id)]
                Image.fromarray(image).save(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
                labels = root / "gtFine" / split / city
                if label_ids:
                    Image.fromarray(ids, mode="L").save(labels / f"{name}_gtFine_labelIds.png")
                if train_ids:
                    Image.fromarray(train_id_lookup()[ids], mode="L").save(labels / f"{name}_gtFine_labelTrainIds.png")
    return root
