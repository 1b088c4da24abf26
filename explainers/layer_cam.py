"""LayerCAM (Jiang et al. 2021): each activation weighted by its own positive gradient, not a channel mean."""
from __future__ import annotations

import torch
from captum.attr import LayerGradientXActivation
from torch import nn

from explainers.base import Explainer
from explainers.grad_cam import upsample_grid


class LayerCam(Explainer):
    """relu(sum_k relu(d logit / d A_k(i, j)) * A_k(i, j)) at `layer`, upsampled bilinearly to the input.

    Grad-CAM averages each channel's gradient over the whole map, so a channel that fires on the
    object and on the background gets one weight; LayerCAM keeps the weight per location, which
    follows object extents more closely (the paper's localisation results). Deterministic.
    """

    def __init__(self, layer: nn.Module, seed: int = 0):
        super().__init__(seed)
        if not isinstance(layer, nn.Module):
            raise TypeError(f"layer_cam needs layer=<nn.Module> to explain, got {type(layer).__name__}")
        self.layer = layer

    feature_grid = True
    smooth_maps = True
    explains_layer = True

    def _grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = LayerGradientXActivation(model, self.layer, multiply_by_inputs=False)
        gradients = method.attribute(images, target=targets)  # without inputs: d logit / d A
        activations = _activations(model, self.layer, images)
        if gradients.ndim != 4:
            raise ValueError(f"LayerCAM layer output must be [B, C, h, w] feature maps, got {tuple(gradients.shape)}")
        return torch.relu((torch.relu(gradients) * activations).sum(dim=1)).detach()

    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return upsample_grid(self._grid(model, images, targets), tuple(images.shape[-2:]))


def _activations(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The layer's output for `images`, read by a forward hook that is removed again."""
    captured = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output.detach()))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    return captured[0]
