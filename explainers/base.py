"""The one interface every saliency method implements, with the input checks they all share."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Explainer(ABC):
    """Maps a batch of [0, 1] images and their target classes to raw saliency maps.

    Maps stay raw (no normalisation) and on the images' device: normalising is the store's job,
    done once in one place. `seed` makes every call reproducible without touching global RNGs.
    """

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def explain(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return float32 maps [B, H, W] for images [B, 3, H, W] and targets [B]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        if targets.ndim != 1 or targets.shape[0] != images.shape[0]:
            raise ValueError(f"targets must be [B] with B={images.shape[0]}, got shape {tuple(targets.shape)}")
        if targets.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"targets must be integer class ids, got dtype {targets.dtype}")
        maps = self._maps(model, images.float(), targets.to(device=images.device, dtype=torch.long))
        return maps.to(device=images.device, dtype=torch.float32)

    @abstractmethod
    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The method itself: raw maps [B, H, W] for validated inputs."""
