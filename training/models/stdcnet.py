"""STDCNet backbones (Fan et al. 2021, "Rethinking BiSeNet"): STDC1 (STDC813) and STDC2 (STDC1446).

The network returns its five feature maps (strides 2, 4, 8, 16, 32) because both STDC-Seg and
PP-LiteSeg decode from several scales. Module names follow the official checkpoints
(`features.<i>.conv_list.<j>.conv.weight`, ...), so their ImageNet weights load directly; the
classifier (conv_last, fc, linear) is not built because segmentation never uses it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from training.models.layers import ConvBNReLU
from training.models.weights import LoadReport, load_matching, read_state_dict

# STDC blocks per stage (strides 8, 16, 32).
STAGE_BLOCKS = {"stdc1": (2, 2, 2), "stdc2": (4, 5, 3)}
BASE_WIDTH = 64
CONVS_PER_BLOCK = 4
FEATURE_CHANNELS = (32, 64, 256, 512, 1024)


class STDCBlock(nn.Module):
    """Short-Term Dense Concatenate module: ever thinner convs whose outputs are concatenated.

    Output widths for 4 convs: out/2, out/4, out/8, out/8. A stride-2 block downsamples the first
    conv's output with a depthwise conv (avd_layer) and its shortcut with 3x3 average pooling, which
    counts the zero padding in the official PyTorch STDC and leaves it out in PaddleSeg
    (`pool_excludes_padding`): border pixels differ, so it must match where the weights come from.
    """

    def __init__(self, in_ch: int, out_ch: int, num_convs: int = CONVS_PER_BLOCK, stride: int = 1,
                 pool_excludes_padding: bool = False):
        super().__init__()
        if num_convs < 2:
            raise ValueError(f"an STDC block needs at least 2 convs, got {num_convs}")
        self.stride = stride
        widths = [out_ch // 2] + [out_ch // 2 ** (i + 1) for i in range(1, num_convs - 1)]
        widths.append(widths[-1])
        self.conv_list = nn.ModuleList([ConvBNReLU(in_ch, widths[0], kernel=1)])
        for prev, width in zip(widths[:-1], widths[1:]):
            self.conv_list.append(ConvBNReLU(prev, width, kernel=3))
        if stride == 2:
            half = out_ch // 2
            self.avd_layer = nn.Sequential(
                nn.Conv2d(half, half, 3, stride=2, padding=1, groups=half, bias=False),
                nn.BatchNorm2d(half))
            self.skip = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=not pool_excludes_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.conv_list[0](x)
        out = self.avd_layer(first) if self.stride == 2 else first
        pieces = []
        for conv in self.conv_list[1:]:
            out = conv(out)
            pieces.append(out)
        if self.stride == 2:
            first = self.skip(first)
        return torch.cat([first, *pieces], dim=1)


class STDCNet(nn.Module):
    """Two stride-2 ConvBNReLU stems, then three stages of STDC blocks (first block strides 2)."""

    feat_channels = FEATURE_CHANNELS

    def __init__(self, variant: str = "stdc2", pool_excludes_padding: bool = False):
        super().__init__()
        if variant not in STAGE_BLOCKS:
            raise KeyError(f"unknown STDCNet variant {variant!r}; valid: {sorted(STAGE_BLOCKS)}")
        self.variant = variant
        layers = [ConvBNReLU(3, BASE_WIDTH // 2, 3, stride=2), ConvBNReLU(BASE_WIDTH // 2, BASE_WIDTH, 3, stride=2)]
        ends = [1, 2]
        in_ch = BASE_WIDTH
        for stage, blocks in enumerate(STAGE_BLOCKS[variant]):
            out_ch = BASE_WIDTH * 4 * 2 ** stage
            for j in range(blocks):
                layers.append(STDCBlock(in_ch, out_ch, stride=2 if j == 0 else 1,
                                          pool_excludes_padding=pool_excludes_padding))
                in_ch = out_ch
            ends.append(len(layers))
        self.features = nn.Sequential(*layers)
        self.stage_ends = tuple(ends)  # features[:1] -> 1/2, [1:2] -> 1/4, then one stage each

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs, start = [], 0
        for end in self.stage_ends:
            for layer in self.features[start:end]:
                x = layer(x)
            outs.append(x)
            start = end
        return tuple(outs)


def load_stdcnet_weights(backbone: STDCNet, path: str | Path) -> LoadReport:
    """Load ImageNet STDCNet weights from a local file; tensors that do not fit are reported.

    Accepts the official checkpoints (a dict with `state_dict`) and plain state dicts, with or
    without a `backbone.` prefix (e.g. a backbone cut from a segmentation checkpoint).
    """
    state = read_state_dict(path)
    state = {k.removeprefix("backbone."): v for k, v in state.items()}
    return load_matching(backbone, state)
