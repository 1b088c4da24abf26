"""The embedded default dataset: real photos that ship inside scikit-image, scikit-learn and matplotlib.

None of them carries an ImageNet label, so their class is unknown and the ensemble's top-1 is used.
"""
from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

# (package, resource folder, file) — a cat, a coffee cup, a rocket, a portrait, a temple, ...
SAMPLE_FILES = (
    ("skimage", "data", "chelsea.png"),
    ("skimage", "data", "coffee.png"),
    ("skimage", "data", "astronaut.png"),
    ("skimage", "data", "rocket.jpg"),
    ("skimage", "data", "motorcycle_left.png"),
    ("skimage", "data", "camera.png"),
    ("sklearn", "datasets/images", "china.jpg"),
    ("sklearn", "datasets/images", "flower.jpg"),
    ("matplotlib", "mpl-data/sample_data", "grace_hopper.jpg"),
    ("matplotlib", "mpl-data/sample_data", "Minduka_Present_Blue_Pack.png"),
)


def sample_path(package: str, folder: str, name: str) -> Path:
    return Path(str(resources.files(package).joinpath(folder, name)))


def materialize_sample(dest: str | Path) -> Path:
    """Copy the sample photos into `dest` (idempotent) and return it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for package, folder, name in SAMPLE_FILES:
        target = dest / name
        if not target.exists():
            shutil.copyfile(sample_path(package, folder, name), target)
    return dest
