"""What every training dataset shares: a raw sample at the image's own size, augmented by a seeded RNG.

Items are addressed by a key `(index, epoch)`; the augmentation RNG is seeded from
(dataset seed, epoch, index), so a sample's crop/flip/colour draw never depends on which worker
loaded it or on what was loaded before — the property exact resume relies on.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch.utils.data import Dataset

from core.errors import PsslError
from core.images import BadImage, load_rgb


class DataError(PsslError, ValueError):
    """Training data that cannot be used; the message names the file, array or key that is wrong."""


def load_image_tensor(path) -> torch.Tensor:
    """float32 [3,H,W] in 0..255, or a DataError naming the file and why it cannot be read."""
    try:
        rgb = load_rgb(path)
    except BadImage as error:
        raise DataError(f"image {path}: {error}") from None
    return torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1).contiguous()


def check_files_exist(paths: list, what: str) -> None:
    """Fail before training starts, not hours in inside a DataLoader worker."""
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{what} not found: {missing[0]}{more}")


class AugmentedSegmentationDataset(Dataset, ABC):
    """Subclasses load (image, label, weight) at the image's own size; this class augments them."""

    def __init__(self, transforms, seed: int):
        self.transforms = transforms
        self.seed = int(seed)

    @abstractmethod
    def load(self, index: int) -> dict:
        """{'image': float32[3,H,W] 0..255, 'label': int64[H,W], 'weight': float32[H,W], 'path': str}."""

    def __getitem__(self, key) -> dict:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        sample = self.transforms(self.load(int(index)), rng)
        sample["index"] = int(index)
        return sample
