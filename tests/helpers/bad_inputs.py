"""A corpus of awkward image files: the convertible ones must load, the rest must be refused with a reason."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.helpers.images import write_photo


def _png_claiming(width: int, height: int) -> bytes:
    """A valid PNG signature and header for a huge image, with almost no data: a decompression bomb's shape."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def write_corpus(folder: Path) -> dict[str, bool]:
    """Write the corpus into `folder`; returns {file name: should load}."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, mode in [("gray.png", "L"), ("rgba.png", "RGBA"), ("palette.png", "P"), ("cmyk.jpg", "CMYK")]:
        write_photo(folder / name, seed=len(expected), mode=mode)
        expected[name] = True
    sixteen = (np.linspace(0, 65535, 48 * 40).reshape(40, 48)).astype(np.uint16)
    Image.fromarray(sixteen).save(folder / "gray16.png")
    expected["gray16.png"] = True
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (40, 20), (200, 30, 30)).save(folder / "rotated.jpg", exif=exif.tobytes())
    expected["rotated.jpg"] = True
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (folder / "not_an_image.jpg").write_text("this is a text file, not a JPEG")
    (folder / "empty.png").write_bytes(b"")
    Image.new("RGB", (4, 4)).save(folder / "tiny.png")
    (folder / "bomb.png").write_bytes(_png_claiming(100_000, 100_000))
    expected.update({"truncated.jpg": False, "not_an_image.jpg": False, "empty.png": False,
                     "tiny.png": False, "bomb.png": False})
    return expected
