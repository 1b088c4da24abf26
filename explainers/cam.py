"""The CAM family's shell: a layer to explain, its coarse feature grid, and the one upsampling of it.

A CAM method subclasses `CamExplainer` with its registry name (`class GradCam(CamExplainer,
name="grad_cam")`) and overrides `_grid` only; it is then in CAM_EXPLAINERS, which the explainer
registry includes and multi-scale wraps by name.
"""
from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from explainers.base import Explainer


CAM_EXPLAINERS: dict[str, type[CamExplainer]] = {}


class CamExplainer(Explainer):
    """A map computed at `layer` as a coarse [B, h, w] grid, upsampled bilinearly to the input.

    Bilinear with align_corners=False: each feature cell's value lands on the centre of the input
    area it covers, and bilinear weights never overshoot, so a non-negative grid stays non-negative
    (bicubic would ring below zero next to strong peaks). CAMs draw no random numbers; `seed` is
    accepted so every explainer takes the same params.
    """

    feature_grid = True
    smooth_maps = True
    explains_layer = True

    def __init_subclass__(cls, name: str, **kwargs):
        super().__init_subclass__(**kwargs)
        CAM_EXPLAINERS[name] = cls

    def __init__(self, layer: nn.Module, seed: int = 0):
        super().__init__(seed)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"{type(self).__name__} needs layer=<nn.Module> to explain, got {type(layer).__name__}")
        self.layer = layer

    @abstractmethod
    def _grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The method itself: coarse maps [B, h, w] at the layer's resolution."""

    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return upsample_grid(self._grid(model, images, targets), tuple(images.shape[-2:]))


def upsample_grid(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, h, w] coarse maps -> [B, *size], the one resize every CAM gets (the store regenerates full
    maps from the grid with this same call)."""
    return F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]


def layer_output(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The layer's output for `images`, read by a forward hook that is removed again."""
    captured = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output.detach()))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return captured[0]
