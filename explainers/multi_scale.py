"""Multi-scale + flip CAMs: the weakly-supervised segmentation standard (IRN, Ahn et al. 2019)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from explainers.base import Explainer
from explainers.cam import CAM_EXPLAINERS, upsample_grid


class MultiScaleCam(Explainer):
    """The sum of a CAM method's maps over resized and mirrored copies of the image, at the input size.

    `method` names any CAM explainer (explainers/cam.py CAM_EXPLAINERS: grad_cam, layer_cam, ...).

    One scale sees objects at one size relative to the network's receptive field: small scales
    light up whole large objects, large scales the parts of small ones. Summing them (and the
    mirrored image, mirrored back) covers more of the object than one pass. Each copy's map is
    resized back to the input size before the sum.
    """

    smooth_maps = True
    explains_layer = True

    def __init__(self, layer: nn.Module, method: str = "grad_cam", scales=(1.0, 0.5, 1.5, 2.0), flip: bool = True,
                 seed: int = 0):
        super().__init__(seed)
        if method not in CAM_EXPLAINERS:
            raise ValueError(f"multi_scale_cam method must be one of {sorted(CAM_EXPLAINERS)}, got {method!r}")
        self.scales = tuple(float(s) for s in scales)
        if not self.scales or min(self.scales) <= 0:
            raise ValueError(f"multi_scale_cam scales must be positive, got {list(scales)}")
        self.cam = CAM_EXPLAINERS[method](layer=layer, seed=seed)
        self.flip = bool(flip)

    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        size = images.shape[-2:]
        total = torch.zeros(images.shape[0], *size, device=images.device)
        for scale in self.scales:
            scaled = images if scale == 1.0 else F.interpolate(
                images, size=[max(8, round(scale * s)) for s in size], mode="bilinear", align_corners=False)
            copies = [(scaled, False)] + ([(scaled.flip(-1), True)] if self.flip else [])
            for copy, mirrored in copies:
                cam = self.cam.explain(model, copy, targets)
                cam = cam.flip(-1) if mirrored else cam
                total += upsample_grid(cam, tuple(size))
        return total
