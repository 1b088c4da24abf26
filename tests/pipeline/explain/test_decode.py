"""decode_batch: JPEGs decoded together by torchvision (nvJPEG on a GPU; its CPU decoder here), the rest by PIL."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from core.images import BadImage, load_rgb
from pipeline.explain.decode import decode_batch
from pipeline.explain.stage import resize_batch


def test_jpegs_in_one_batch_others_alone_bad_ones_named(tmp_path):
    rng = np.random.default_rng(0)
    pixels = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    rotated = Image.fromarray(pixels)
    exif = rotated.getexif()
    exif[0x0112] = 6  # EXIF orientation: rotate 90 degrees to display
    rotated.save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    Image.fromarray(pixels).save(tmp_path / "b.png")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    paths = [tmp_path / name for name in ("a.jpg", "rotated.jpg", "b.png", "broken.jpg")]
    decoded = decode_batch(paths, torch.device("cpu"))
    assert isinstance(decoded[0], torch.Tensor) and decoded[0].shape == (3, 240, 320)
    assert decoded[1].shape == (3, 320, 240)  # the orientation is applied, as load_rgb applies it
    assert isinstance(decoded[2], np.ndarray) and np.array_equal(decoded[2], load_rgb(paths[2]))
    assert isinstance(decoded[3], BadImage) and "unreadable" in str(decoded[3])
    for got, path in zip(decoded[:2], paths[:2]):  # the same pixels as a PIL decode, to a level or two
        assert int((got.permute(1, 2, 0).int() - torch.from_numpy(load_rgb(path)).int()).abs().max()) <= 2
    batch = resize_batch(decoded[:3], 32, torch.device("cpu"))  # tensors and arrays resize alike
    assert batch.shape == (3, 3, 32, 32) and float((batch[0] - batch[2]).abs().max()) < 0.05
