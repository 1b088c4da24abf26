"""Grad-CAM (Selvaraju et al. 2017) through Captum's `LayerGradCam`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from captum.attr import LayerGradCam
from torch import nn

from explainers.base import Explainer


class GradCam(Explainer):
    """relu(sum_k alpha_k A_k) at `layer`, with alpha_k the spatial mean of d logit / d A_k.

    The coarse map is upsampled bilinearly (align_corners=False): each feature cell's value lands
    on the centre of the input area it covers, and bilinear weights never overshoot, so the
    upsampled map stays non-negative (bicubic would ring below zero next to strong peaks).
    Grad-CAM draws no random numbers; `seed` is accepted so every explainer takes the same params.
    """

    def __init__(self, layer: nn.Module, seed: int = 0):
        super().__init__(seed)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"grad_cam needs layer=<nn.Module> to explain, got {type(layer).__name__}")
        self.layer = layer

    feature_grid = True
    smooth_maps = True
    explains_layer = True

    def _grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cam = LayerGradCam(model, self.layer).attribute(images, target=targets, relu_attributions=True)
        if cam.ndim != 4 or cam.shape[1] != 1:
            raise ValueError(f"Grad-CAM layer output must be [B, C, h, w] feature maps, got a map of shape "
                             f"{tuple(cam.shape)}")
        return cam.detach()[:, 0]

    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return upsample_grid(self._grid(model, images, targets), tuple(images.shape[-2:]))


def upsample_grid(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, h, w] coarse maps -> [B, *size], the one resize every Grad-CAM-like map gets (the store
    regenerates full maps from the grid with this same call)."""
    return F.interpolate(cam[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
