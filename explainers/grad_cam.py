"""Grad-CAM (Selvaraju et al. 2017) through Captum's `LayerGradCam`."""
from __future__ import annotations

import torch
from captum.attr import LayerGradCam
from torch import nn

from explainers.cam import CamExplainer


class GradCam(CamExplainer, name="grad_cam"):
    """relu(sum_k alpha_k A_k) at `layer`, with alpha_k the spatial mean of d logit / d A_k."""

    def _grid(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cam = LayerGradCam(model, self.layer).attribute(images, target=targets, relu_attributions=True)
        if cam.ndim != 4 or cam.shape[1] != 1:
            raise ValueError(f"Grad-CAM layer output must be [B, C, h, w] feature maps, got a map of shape "
                             f"{tuple(cam.shape)}")
        return cam.detach()[:, 0]
