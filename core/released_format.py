"""The released PSSL label format read by PaddleSeg's `PSSLDataset`, both ways.

Layout (PaddleSeg `paddleseg/datasets/pssl.py` and `configs/pssl/README.md`):

    pssl_root/train.txt                       one label per line: train/<wnid>/<name>.JPEG_eiseg.npz
    pssl_root/imagenet_lsvrc_2015_synsets.txt one WordNet id per line; line number = class id 0..999
    pssl_root/train/<wnid>/<name>.JPEG_eiseg.npz   the mask, under the key `arr_0`

PaddleSeg turns `arr_0 == 1` into the image's class (looked up from the synsets by the wnid prefix
of the file name) and every other value into background (1000); 1001 is its ignore index, used
only for crop padding. So the released labels are binary at the image's own size (the label goes
through the same resize and crop as the image). This project's mask also has ignore (255): export
keeps it as 255, which PaddleSeg reads as background and `load_released_label` reads back as
ignore. The per-pixel weight has no place in the format and is not exported.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from core.store import BACKGROUND, FOREGROUND, IGNORE

TRAIN_LIST, SYNSETS, SUFFIX = "train.txt", "imagenet_lsvrc_2015_synsets.txt", "_eiseg.npz"


def load_released_label(npz_path: str | Path, ignore_as_background: bool = False) -> np.ndarray:
    """The [H, W] uint8 mask of one label file: 1 foreground, 0 background, 255 ignore.

    As in PaddleSeg, only 1 is foreground; 255 (written by this project's export) is ignore unless
    `ignore_as_background`, which reproduces PaddleSeg's reading exactly; any other value is background.
    """
    with np.load(npz_path) as data:
        if "arr_0" not in data:
            raise ValueError(f"{npz_path}: no `arr_0` array (keys: {list(data.keys())})")
        raw = np.asarray(data["arr_0"])
    if raw.ndim != 2:
        raise ValueError(f"{npz_path}: arr_0 has shape {raw.shape}, expected a 2-D mask")
    mask = np.where(raw == FOREGROUND, FOREGROUND, BACKGROUND).astype(np.uint8)
    if not ignore_as_background:
        mask[raw == IGNORE] = IGNORE
    return mask


def label_path(image_path: str, wnid: str) -> str:
    """`train/<wnid>/<image file name>_eiseg.npz`, the line PaddleSeg expects in train.txt."""
    return f"train/{wnid}/{PurePosixPath(image_path).name}{SUFFIX}"
