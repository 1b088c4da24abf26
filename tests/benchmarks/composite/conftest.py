"""A tiny composite world made in the test: small RGBA cut-outs, noise photos and the two tables naming them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmarks.composite.backgrounds import SCIKIT_IMAGE, Background, load_backgrounds
from benchmarks.composite.catalogue import Stamp, load_catalogue

# (stamp path, ImageNet class id, its first lemma, split): three classes, each with a stamp in both splits
STAMPS = [("birds/peacock_a.png", 84, "peacock", "tuning"), ("birds/peacock_b.png", 84, "peacock", "heldout"),
          ("birds/ostrich_a.png", 9, "ostrich", "tuning"), ("birds/ostrich_b.png", 9, "ostrich", "heldout"),
          ("food/orange_a.png", 950, "orange", "tuning"), ("food/orange_b.png", 950, "orange", "heldout")]
PHOTOS = [("sky.png", "tuning"), ("grass.png", "tuning"), ("sand.png", "heldout"), ("rock.png", "heldout")]


def disc_cutout(rng: np.random.Generator, size: int, colour: tuple[int, int, int]) -> np.ndarray:
    """uint8 RGBA: a textured disc with a soft one-pixel edge inside a transparent margin."""
    yy, xx = np.mgrid[0:size, 0:size]
    radius = size / 2 - 3
    distance = np.hypot(yy - size / 2 + 0.5, xx - size / 2 + 0.5)
    alpha = np.clip((radius - distance + 0.5) * 255, 0, 255).astype(np.uint8)
    rgb = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


@dataclass
class TinyWorld:
    stamp_folder: Path
    photo_folder: Path
    classes: Path
    backgrounds: Path

    def stamps(self) -> list[Stamp]:
        return load_catalogue(self.classes)

    def photos(self) -> list[Background]:
        return load_backgrounds(self.backgrounds)

    def folder_of(self, source: str) -> Path:
        assert source == SCIKIT_IMAGE
        return self.photo_folder


@pytest.fixture
def tiny_world(tmp_path: Path) -> TinyWorld:
    rng = np.random.default_rng(7)
    stamp_folder, photo_folder = tmp_path / "stamps", tmp_path / "photos"
    rows = []
    for k, (path, class_id, name, split) in enumerate(STAMPS):
        file = stamp_folder / path
        file.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(disc_cutout(rng, 40 + 8 * k, (40 * k, 200 - 30 * k, 90))).save(file)
        rows.append({"stamp": path, "use": True, "class_id": class_id, "class_name": name, "split": split})
    rows.append({"stamp": "birds/cartoon_owl.png", "use": False, "reason": "drawing, not a photo"})
    photo_folder.mkdir()
    backgrounds = []
    for name, split in PHOTOS:
        Image.fromarray(rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)).save(photo_folder / name)
        backgrounds.append({"name": name[:-4], "source": SCIKIT_IMAGE, "file": name, "crop": [0, 0, 1, 1],
                            "split": split})
    classes, photos = tmp_path / "classes.yaml", tmp_path / "backgrounds.yaml"
    classes.write_text(yaml.safe_dump({"stamps": rows}))
    photos.write_text(yaml.safe_dump({"backgrounds": backgrounds}))
    return TinyWorld(stamp_folder, photo_folder, classes, photos)
