"""The background photos (backgrounds.yaml): where each comes from, which crop of it is used, and its pixels.

A source is a Debian package (fetched, checked and unpacked by benchmarks.debian_packages) or the photos
inside the pinned scikit-image wheel. A crop keeps the part of a photo that shows no object of its own; the
generator then takes windows inside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import debian_packages
from benchmarks.composite.tables import CompositeError, field, read_rows, split_field, unique, unreadable

BACKGROUNDS = Path(__file__).with_name("backgrounds.yaml")
PACKAGES = {package.name: package for package in (
    debian_packages.LOMIRI_WALLPAPERS_1604, debian_packages.LOMIRI_WALLPAPERS_2004, debian_packages.MATE_BACKGROUNDS,
    debian_packages.PLASMA_WALLPAPERS, debian_packages.TUXPAINT_DATA)}
SCIKIT_IMAGE = "scikit-image"
PREPARED_SHORT_SIDE = 768  # crops are shrunk to this shorter side: windows (>= 60% of it) hardly need enlarging
MIN_CROP_SIDE = 256


@dataclass(frozen=True)
class Background:
    name: str
    source: str
    file: str
    crop: tuple[float, float, float, float]  # left, top, right, bottom as fractions of the photo
    split: str


def _crop(row: dict, where: str) -> tuple[float, float, float, float]:
    crop = field(row, "crop", list, where)
    if len(crop) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in crop):
        raise CompositeError(f"{where}: crop must be [left, top, right, bottom] fractions, not {crop!r}")
    left, top, right, bottom = (float(v) for v in crop)
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
        raise CompositeError(f"{where}: crop {crop} is not inside [0, 1] with left < right and top < bottom")
    return left, top, right, bottom


def load_backgrounds(path: str | Path = BACKGROUNDS) -> list[Background]:
    path = Path(path)
    backgrounds = []
    for number, row in enumerate(read_rows(path, "backgrounds"), 1):
        where = f"{path.name} row {number}"
        name = field(row, "name", str, where)
        where = f"{where} ({name})"
        source = field(row, "source", str, where)
        if source not in PACKAGES and source != SCIKIT_IMAGE:
            raise CompositeError(f"{where}: unknown source {source!r} (use {', '.join(sorted(PACKAGES))} or "
                                 f"{SCIKIT_IMAGE})")
        backgrounds.append(Background(name, source, field(row, "file", str, where), _crop(row, where),
                                      split_field(row, where)))
    unique([b.name for b in backgrounds], "background", path)
    unique([f"{b.source}:{b.file}" for b in backgrounds], "photo", path)
    return backgrounds


def source_folder(source: str) -> Path:
    if source == SCIKIT_IMAGE:
        import skimage.data  # the wheel's own photo folder; imported here so tables load without it

        return Path(skimage.data.__file__).parent
    return debian_packages.unpacked(PACKAGES[source])


def load_photo(background: Background, folder: Path | None = None) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the background's crop, shrunk to at most PREPARED_SHORT_SIDE on its shorter side."""
    path = (folder or source_folder(background.source)) / background.file
    try:
        with Image.open(path) as image:
            photo = image.convert("RGB")
    except OSError as error:  # Pillow's UnidentifiedImageError is one too
        raise CompositeError(f"cannot read background {background.name} ({path}): {unreadable(error)}") from None
    left, top, right, bottom = background.crop
    box = (round(left * photo.width), round(top * photo.height), round(right * photo.width),
           round(bottom * photo.height))
    cropped = photo.crop(box)
    if min(cropped.size) < MIN_CROP_SIDE:
        raise CompositeError(f"background {background.name}: its crop is {cropped.width}x{cropped.height} px, "
                             f"under {MIN_CROP_SIDE} px on a side")
    scale = PREPARED_SHORT_SIDE / min(cropped.size)
    if scale < 1:
        cropped = cropped.resize((round(cropped.width * scale), round(cropped.height * scale)), Image.LANCZOS)
    return np.asarray(cropped)
