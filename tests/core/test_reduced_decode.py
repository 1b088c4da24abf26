"""load_rgb(draft=...): a large JPEG is decoded smaller by DCT scaling, never below the floor; others unchanged."""
from __future__ import annotations

import numpy as np
from PIL import Image

from core.images import load_rgb


def test_a_large_jpeg_decodes_smaller_but_not_below_the_floor(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1536, 2048, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(tmp_path / "small.jpg")
    Image.fromarray(rng.integers(0, 255, (1536, 2048, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    assert load_rgb(tmp_path / "big.jpg", draft=448).shape == (768, 1024, 3)  # 1/2: 1/4 would be 384 high
    assert load_rgb(tmp_path / "big.jpg", draft=100).shape == (192, 256, 3)  # 1/8
    assert np.array_equal(load_rgb(tmp_path / "small.jpg", draft=224), load_rgb(tmp_path / "small.jpg"))
    assert load_rgb(tmp_path / "big.png", draft=100).shape == (1536, 2048, 3)  # not a JPEG: decoded whole
