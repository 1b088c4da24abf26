"""Decode a shard's JPEGs in one batch on the GPU (nvJPEG through `torchvision.io.decode_jpeg`), the rest with PIL.

On a GPU worker, PIL's decode on one CPU core (~3.4 ms for a 500x375 JPEG, results/bench_decode.md) is
slower than the model's passes; nvJPEG decodes the whole batch on the device, where the images are needed.
Every file is first opened by PIL for its header only, so the size and decompression-bomb checks stay
those of `core.images.load_rgb`. A file that is not a JPEG, or a batch nvJPEG refuses (CMYK, progressive
oddities, a corrupt file), falls back to `load_rgb` file by file, so a bad image is still named alone.
nvJPEG's inverse DCT is not libjpeg's: pixels may differ by a level or two from a CPU decode.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.images import DEFAULT_MAX_PIXELS, BadImage, load_rgb

JPEG_SUFFIXES = (".jpg", ".jpeg")


def _checked_jpeg(path: Path, min_side: int, max_pixels: int) -> bool:
    """True for a JPEG whose header passes load_rgb's checks; raises BadImage as load_rgb would."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                is_jpeg = image.format == "JPEG" and image.mode in ("RGB", "L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        return False  # load_rgb names the problem
    if width * height > max_pixels or min(width, height) < min_side:
        return False
    return is_jpeg


def decode_batch(paths: list[Path], device: torch.device, min_side: int = 1,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> list[torch.Tensor | np.ndarray | BadImage]:
    """Each image as a uint8 [3, H, W] tensor on `device` (JPEGs, decoded together) or an HxWx3 array (the others,
    by load_rgb), or the BadImage that says why it cannot be used; EXIF orientation applied either way."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    out: list = [None] * len(paths)
    jpegs = [i for i, p in enumerate(paths) if Path(p).suffix.lower() in JPEG_SUFFIXES
             and _checked_jpeg(Path(p), min_side, max_pixels)]
    if jpegs:
        try:
            decoded = decode_jpeg([read_file(str(paths[i])) for i in jpegs], mode=ImageReadMode.RGB, device=device,
                                  apply_exif_orientation=True)
            for i, image in zip(jpegs, decoded):
                out[i] = image
        except RuntimeError:
            pass  # the batch is decoded file by file below
    for i, path in enumerate(paths):
        if out[i] is None:
            try:
                out[i] = load_rgb(path, min_side=min_side, max_pixels=max_pixels)
            except BadImage as error:
                out[i] = error
    return out
