"""The stamp catalogue: the reviewed class table (classes.yaml) and the cut-outs it names.

Each row is one photo stamp of Debian's tuxpaint-stamps-default, reviewed by eye: used stamps carry their
ImageNet class and split, unused ones the reason. A used row's class name must be the first lemma of its
class id (core/imagenet_lemmas.txt), so a mistyped id cannot slip through with a plausible name beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.composite.tables import CompositeError, field, read_rows, split_field, unique, unreadable
from benchmarks.debian_packages import TUXPAINT_STAMPS, unpacked
from core.imagenet_classes import imagenet_synsets, readable_name

CLASSES = Path(__file__).with_name("classes.yaml")
STAMPS_FOLDER = "usr/share/tuxpaint/stamps"
OPAQUE = 128  # alpha at or above this counts as the object (alpha >= 0.5)


@dataclass(frozen=True)
class Stamp:
    path: str  # relative to the stamps folder
    class_id: int
    class_name: str
    split: str


def _used_stamp(row: dict, where: str) -> Stamp:
    class_id = field(row, "class_id", int, where)
    if not 0 <= class_id < len(imagenet_synsets()):
        raise CompositeError(f"{where}: class_id {class_id} is not an ImageNet class (0-999)")
    name = field(row, "class_name", str, where)
    expected = readable_name(imagenet_synsets()[class_id])
    if name != expected:
        raise CompositeError(f"{where}: class {class_id} is {expected!r}, not {name!r}")
    return Stamp(row["stamp"], class_id, name, split_field(row, where))


def load_catalogue(path: str | Path = CLASSES) -> list[Stamp]:
    """The used stamps, in table order; every row is checked (an unused one must say why)."""
    path = Path(path)
    rows = read_rows(path, "stamps")
    stamps = []
    for number, row in enumerate(rows, 1):
        where = f"{path.name} row {number}"
        field(row, "stamp", str, where)
        where = f"{where} ({row['stamp']})"
        if field(row, "use", bool, where):
            stamps.append(_used_stamp(row, where))
        elif not field(row, "reason", str, where).strip():
            raise CompositeError(f"{where}: an unused stamp needs a reason")
    unique([str(row["stamp"]) for row in rows], "stamp", path)
    if not stamps:
        raise CompositeError(f"{path}: no stamp is used")
    return stamps


def stamps_folder() -> Path:
    """The unpacked stamps of tuxpaint-stamps-default (fetched with apt-get on first use)."""
    return unpacked(TUXPAINT_STAMPS) / STAMPS_FOLDER


def load_cutout(folder: Path, stamp: str) -> np.ndarray:
    """The stamp as uint8 RGBA [H, W, 4], cropped to the pixels its alpha keeps at all."""
    path = folder / stamp
    try:
        with Image.open(path) as image:
            rgba = np.asarray(image.convert("RGBA"))
    except OSError as error:  # Pillow's UnidentifiedImageError is one too
        raise CompositeError(f"cannot read stamp {path}: {unreadable(error)}") from None
    rows, cols = np.nonzero(rgba[..., 3] > 0)
    if not (rgba[..., 3] >= OPAQUE).any():
        raise CompositeError(f"stamp {path}: its alpha keeps no pixel at 0.5 or above")
    return np.ascontiguousarray(rgba[rows.min():rows.max() + 1, cols.min():cols.max() + 1])
