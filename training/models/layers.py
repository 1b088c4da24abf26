"""Building blocks shared by the STDC backbone, STDC-Seg and PP-LiteSeg."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNReLU(nn.Module):
    """Conv (no bias: BatchNorm follows) + BatchNorm + optional ReLU.

    The attribute names (conv, bn) match the official STDC-Seg checkpoints, so ImageNet STDCNet
    weights load by name.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SegHead(nn.Module):
    """3x3 ConvBNReLU then a 1x1 classifier: the per-scale prediction head of both networks.

    `classifier_bias=False` for PaddleSeg's PP-LiteSeg, whose classifier has none.
    """

    def __init__(self, in_ch: int, mid_ch: int, num_classes: int, classifier_bias: bool = True):
        super().__init__()
        self.conv = ConvBNReLU(in_ch, mid_ch, 3)
        self.conv_out = nn.Conv2d(mid_ch, num_classes, 1, bias=classifier_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


def resize(x: torch.Tensor, size, mode: str = "bilinear", align_corners: bool | None = None) -> torch.Tensor:
    """Interpolate to `size` ([H, W]); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=tuple(size), mode="nearest")
    return F.interpolate(x, size=tuple(size), mode=mode, align_corners=bool(align_corners))
