"""LayerCAM (Jiang et al. 2021): each activation weighted by its own positive gradient, not a channel mean."""
from __future__ import annotations

import torch
from captum.attr import LayerGradientXActivation
from torch import nn

from explainers.cam import CamExplainer, layer_output


class LayerCam(CamExplainer, name="layer_cam"):
    """relu(sum_k relu(d logit / d A_k(i, j)) * A_k(i, j)) at `layer`.

    Grad-CAM averages each channel's gradient over the whole map, so a channel that fires on the
    object and on the background gets one weight; LayerCAM keeps the weight per location, which
    follows object extents more closely (the paper's localisation results).
    """

    def _grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        method = LayerGradientXActivation(model, self.layer, multiply_by_inputs=False)
        gradients = method.attribute(images, target=targets)  # without inputs: d logit / d A
        activations = layer_output(model, self.layer, images)
        if gradients.ndim != 4:
            raise ValueError(f"LayerCAM layer output must be [B, C, h, w] feature maps, got {tuple(gradients.shape)}")
        return torch.relu((torch.relu(gradients) * activations).sum(dim=1)).detach()
