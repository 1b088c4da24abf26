"""PP-LiteSeg (Peng et al. 2022): STDCNet encoder, SPPM context, UAFM decoder (spatial attention).

The decoder walks from 1/32 to 1/8; each UAFM fuses the upsampled deeper output with the
backbone feature of its scale. One SegHead per scale: the 1/8 head is the prediction, the 1/16
and 1/32 heads are the training-time auxiliary heads (PaddleSeg trains all three, coef 1:1:1).
PP-LiteSeg-T: STDC1, decoder channels (32, 64, 128), head channels (32, 64, 64).
PP-LiteSeg-B: STDC2, decoder channels (64, 96, 128), head channels (64, 64, 64).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.models.layers import ConvBNReLU, SegHead, resize
from training.models.outputs import SegOutputs
from training.models.stdcnet import STDCNet

SPPM_BINS = (1, 2, 4)
SPPM_CHANNELS = 128
SCALES_USED = (2, 3, 4)  # backbone outputs at 1/8, 1/16, 1/32


class SimplePyramidPooling(nn.Module):
    """SPPM: pool to 1x1, 2x2, 4x4, project each to 128 channels, upsample, sum, 3x3 conv."""

    def __init__(self, in_ch: int, out_ch: int = SPPM_CHANNELS, bins: Sequence[int] = SPPM_BINS):
        super().__init__()
        self.bins = tuple(bins)
        self.stages = nn.ModuleList([ConvBNReLU(in_ch, out_ch, 1) for _ in self.bins])
        self.conv_out = ConvBNReLU(out_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = 0
        for size, conv in zip(self.bins, self.stages):
            total = total + resize(conv(F.adaptive_avg_pool2d(x, size)), x.shape[-2:], align_corners=False)
        return self.conv_out(total)


class UnifiedAttentionFusion(nn.Module):
    """UAFM with spatial attention: alpha from [mean, max] of both inputs; out = x*a + y*(1-a)."""

    def __init__(self, low_ch: int, high_ch: int, out_ch: int):
        super().__init__()
        self.conv_x = ConvBNReLU(low_ch, high_ch, 3)
        self.conv_xy_atten = nn.Sequential(ConvBNReLU(4, 2, 3), ConvBNReLU(2, 1, 3, relu=False))
        self.conv_out = ConvBNReLU(high_ch, out_ch, 3)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.conv_x(low)
        y = resize(high, x.shape[-2:], align_corners=False)
        stats = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True),
                           y.mean(1, keepdim=True), y.amax(1, keepdim=True)], dim=1)
        atten = torch.sigmoid(self.conv_xy_atten(stats))
        return self.conv_out(x * atten + y * (1 - atten))


class PPLiteSeg(nn.Module):
    """Train mode -> SegOutputs([head 1/8, head 1/16, head 1/32]); eval mode -> the 1/8 head."""

    def __init__(self, num_classes: int, backbone: STDCNet,
                 decoder_channels: Sequence[int] = (64, 96, 128),
                 head_channels: Sequence[int] = (64, 64, 64), classifier_bias: bool = True):
        super().__init__()
        if len(decoder_channels) != len(SCALES_USED) or len(head_channels) != len(SCALES_USED):
            raise ValueError(f"decoder_channels and head_channels need {len(SCALES_USED)} values each")
        in_chs = [backbone.feat_channels[i] for i in SCALES_USED]
        self.backbone = backbone
        self.sppm = SimplePyramidPooling(in_chs[-1])
        deeper = [*decoder_channels[1:], SPPM_CHANNELS]
        self.uafms = nn.ModuleList([UnifiedAttentionFusion(low, high, out)
                                    for low, high, out in zip(in_chs, deeper, decoder_channels)])
        self.seg_heads = nn.ModuleList([SegHead(ch, mid, num_classes, classifier_bias)
                                        for ch, mid in zip(decoder_channels, head_channels)])

    def decode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The UAFM outputs at 1/8, 1/16, 1/32."""
        feats = self.backbone(x)
        high = self.sppm(feats[SCALES_USED[-1]])
        decoded = []
        for scale, uafm in zip(reversed(SCALES_USED), reversed(self.uafms)):
            high = uafm(feats[scale], high)
            decoded.insert(0, high)
        return decoded

    def forward(self, x: torch.Tensor) -> SegOutputs | torch.Tensor:
        if self.training:
            return self.all_outputs(x)
        return resize(self.seg_heads[0](self.decode(x)[0]), x.shape[-2:], align_corners=False)

    def all_outputs(self, x: torch.Tensor) -> SegOutputs:
        """Every head at the input size, in either mode (train mode returns this; parity checks all heads)."""
        logits = [resize(head(feat), x.shape[-2:], align_corners=False)
                  for head, feat in zip(self.seg_heads, self.decode(x))]
        return SegOutputs(logits=logits, detail=None)
