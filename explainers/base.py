"""The one interface every saliency method implements, with the input checks they all share."""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class Explainer(ABC):
    """Maps a batch of [0, 1] images and their target classes to raw saliency maps.

    Maps stay raw (no normalisation) and on the images' device: normalising is the store's job,
    done once in one place. `seed` makes every call reproducible without touching global RNGs.
    An explainer with `needs_gradients = False` only calls the model without gradients, so the
    explain stage may hand it any tensor-in, logits-out callable (a faster runtime) instead.
    """

    needs_gradients = True
    # True: the class defines `_grid`, the coarse map `explain` upsamples, which `explain_grid` returns
    # and a compact store keeps
    feature_grid = False
    # True: the maps are smooth (bilinear upsamplings of coarse grids), so a stored map of 8-bit levels
    # compresses better after a delta filter (pipeline/maps/stored.py; bytes in docs/store.md)
    smooth_maps = False
    # True: the explainer reads gradients at its `layer` only (the CAM family), so a network split there, whose part
    # before the layer needs no gradients (pipeline/explain/runtime.py SplitNetwork), serves it as well as the whole one
    explains_layer = False

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def explain(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return float32 maps [B, H, W] for images [B, 3, H, W] and targets [B]."""
        images, targets = self._checked(images, targets)
        return self._maps(model, images, targets).to(device=images.device, dtype=torch.float32)

    def explain_grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Return the float32 coarse maps [B, h, w] that `explain` upsamples (feature_grid explainers only)."""
        if not self.feature_grid:
            raise TypeError(f"{type(self).__name__} has no feature grid")
        images, targets = self._checked(images, targets)
        return self._grid(model, images, targets).to(device=images.device, dtype=torch.float32)

    @staticmethod
    def _checked(images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        if targets.ndim != 1 or targets.shape[0] != images.shape[0]:
            raise ValueError(f"targets must be [B] with B={images.shape[0]}, got shape {tuple(targets.shape)}")
        if targets.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"targets must be integer class ids, got dtype {targets.dtype}")
        return images.float(), targets.to(device=images.device, dtype=torch.long)

    @abstractmethod
    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The method itself: raw maps [B, H, W] for validated inputs."""
