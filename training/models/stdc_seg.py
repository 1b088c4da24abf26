"""STDC-Seg (Fan et al. 2021): STDCNet, a BiSeNet-style context path and a feature fusion module.

Heads, as in the paper and PaddleSeg's STDCSeg:
  main   FFM(1/8 spatial features, 1/8 context) -> SegHead(256, 256)
  aux    SegHead(128, 64) on the 1/16 path (ARM16 output upsampled to 1/8)
  aux    SegHead(128, 64) on the 1/32 path (ARM32 output upsampled to 1/16)
  detail SegHead(256, 64, 1) on the 1/8 backbone features: trained against boundaries of the
         label (training/loss.py) so the shallow features learn spatial detail; unused at inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.layers import ConvBNReLU, SegHead, resize
from training.models.outputs import SegOutputs
from training.models.stdcnet import STDCNet

CONTEXT_CHANNELS = 128
FUSED_CHANNELS = 256


class AttentionRefinement(nn.Module):
    """Conv, then reweight channels by a sigmoid of the globally pooled features."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = ConvBNReLU(in_ch, out_ch, 3)
        self.conv_atten = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * atten


class ContextPath(nn.Module):
    """Global context + ARM32 -> up to 1/16; + ARM16 -> up to 1/8 (nearest, as the reference)."""

    def __init__(self, ch16: int, ch32: int, out_ch: int = CONTEXT_CHANNELS):
        super().__init__()
        self.arm16 = AttentionRefinement(ch16, out_ch)
        self.arm32 = AttentionRefinement(ch32, out_ch)
        self.conv_head32 = ConvBNReLU(out_ch, out_ch, 3)
        self.conv_head16 = ConvBNReLU(out_ch, out_ch, 3)
        self.conv_avg = ConvBNReLU(ch32, out_ch, 1)

    def forward(self, feat8, feat16, feat32) -> tuple[torch.Tensor, torch.Tensor]:
        global_context = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))
        sum32 = self.arm32(feat32) + global_context  # broadcast == nearest upsampling of a 1x1 map
        up32 = self.conv_head32(resize(sum32, feat16.shape[-2:], mode="nearest"))
        sum16 = self.arm16(feat16) + up32
        up16 = self.conv_head16(resize(sum16, feat8.shape[-2:], mode="nearest"))
        return up16, up32  # context at 1/8 (from the 1/16 path) and at 1/16 (from the 1/32 path)


class FeatureFusion(nn.Module):
    """Concatenate spatial and context features, then add a channel-attention-weighted copy.

    The attention convs have biases in PaddleSeg and none in the official PyTorch STDC-Seg; no
    BatchNorm follows them, so the biases change the output (`attention_bias`).
    """

    def __init__(self, in_ch: int, out_ch: int, attention_bias: bool = False):
        super().__init__()
        self.convblk = ConvBNReLU(in_ch, out_ch, 1)
        self.conv1 = nn.Conv2d(out_ch, out_ch // 4, 1, bias=attention_bias)
        self.conv2 = nn.Conv2d(out_ch // 4, out_ch, 1, bias=attention_bias)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat + feat * atten


class STDCSeg(nn.Module):
    """Train mode -> SegOutputs([main, aux16, aux32], detail); eval mode -> main logits."""

    def __init__(self, num_classes: int, backbone: STDCNet, ffm_attention_bias: bool = False):
        super().__init__()
        _, _, ch8, ch16, ch32 = backbone.feat_channels
        self.backbone = backbone
        self.context = ContextPath(ch16, ch32)
        self.ffm = FeatureFusion(ch8 + CONTEXT_CHANNELS, FUSED_CHANNELS, ffm_attention_bias)
        self.conv_out = SegHead(FUSED_CHANNELS, FUSED_CHANNELS, num_classes)
        self.conv_out8 = SegHead(CONTEXT_CHANNELS, 64, num_classes)
        self.conv_out16 = SegHead(CONTEXT_CHANNELS, 64, num_classes)
        self.conv_out_sp8 = SegHead(ch8, 64, 1)

    def forward(self, x: torch.Tensor) -> SegOutputs | torch.Tensor:
        if self.training:
            return self.all_outputs(x)
        _, _, feat8, feat16, feat32 = self.backbone(x)
        context8, _ = self.context(feat8, feat16, feat32)
        return resize(self.conv_out(self.ffm(feat8, context8)), x.shape[-2:], align_corners=True)

    def all_outputs(self, x: torch.Tensor) -> SegOutputs:
        """Every head at the input size, in either mode (train mode returns this; parity checks all heads)."""
        size = x.shape[-2:]
        _, _, feat8, feat16, feat32 = self.backbone(x)
        context8, context16 = self.context(feat8, feat16, feat32)
        main = self.conv_out(self.ffm(feat8, context8))
        aux = [self.conv_out8(context8), self.conv_out16(context16)]
        logits = [resize(out, size, align_corners=True) for out in (main, *aux)]
        return SegOutputs(logits=logits, detail=resize(self.conv_out_sp8(feat8), size, align_corners=True))
