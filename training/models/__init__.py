"""Segmentation networks by name: a plain dict and a factory with a helpful error.

Each network comes in two variants that differ only where the two weight sources differ:
`pytorch` computes what the official PyTorch STDC code computes (its ImageNet backbones, and this
project's default), `paddleseg` what PaddleSeg 2.8.0 computes (its `.pdparams`: STDC blocks' average
pool without the padding, STDC-Seg's FFM attention biases, no PP-LiteSeg classifier bias).
"""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from training.models.outputs import SegOutputs
from training.models.pp_liteseg import PPLiteSeg
from training.models.stdc_seg import STDCSeg
from training.models.stdcnet import STDCNet, load_stdcnet_weights

log = logging.getLogger(__name__)


PYTORCH, PADDLESEG = "pytorch", "paddleseg"
VARIANTS = (PYTORCH, PADDLESEG)


def _backbone(depth: str, variant: str) -> STDCNet:
    return STDCNet(depth, pool_excludes_padding=variant == PADDLESEG)


def stdc1_seg(num_classes: int, variant: str = PYTORCH) -> STDCSeg:
    return STDCSeg(num_classes, _backbone("stdc1", variant), ffm_attention_bias=variant == PADDLESEG)


def stdc2_seg(num_classes: int, variant: str = PYTORCH) -> STDCSeg:
    return STDCSeg(num_classes, _backbone("stdc2", variant), ffm_attention_bias=variant == PADDLESEG)


def pp_liteseg_t(num_classes: int, variant: str = PYTORCH) -> PPLiteSeg:
    return PPLiteSeg(num_classes, _backbone("stdc1", variant), decoder_channels=(32, 64, 128),
                     head_channels=(32, 64, 64), classifier_bias=variant != PADDLESEG)


def pp_liteseg_b(num_classes: int, variant: str = PYTORCH) -> PPLiteSeg:
    return PPLiteSeg(num_classes, _backbone("stdc2", variant), decoder_channels=(64, 96, 128),
                     head_channels=(64, 64, 64), classifier_bias=variant != PADDLESEG)


def state_variant(state: dict) -> str | None:
    """The variant a full network's state dict was made for (its heads differ); None for a backbone alone."""
    if "ffm.conv1.weight" in state:
        return PADDLESEG if "ffm.conv1.bias" in state else PYTORCH
    if "seg_heads.0.conv_out.weight" in state:
        return PYTORCH if "seg_heads.0.conv_out.bias" in state else PADDLESEG
    return None


MODELS = {"stdc1_seg": stdc1_seg, "stdc2_seg": stdc2_seg, "pp_liteseg_t": pp_liteseg_t, "pp_liteseg_b": pp_liteseg_b}


def create_model(name: str, num_classes: int, backbone_weights: str | Path | None = None,
                 variant: str = PYTORCH) -> nn.Module:
    """Build a network; optionally load ImageNet STDCNet weights (the load report is logged)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    if variant not in VARIANTS:
        raise KeyError(f"unknown model variant {variant!r}; valid: {', '.join(VARIANTS)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    model = MODELS[name](num_classes, variant)
    if backbone_weights is not None:
        report = load_stdcnet_weights(model.backbone, backbone_weights)
        if not report.loaded:
            raise ValueError(f"no tensor of {backbone_weights} fits the {name} backbone ({report.summary()})")
        log.info("backbone weights %s: %s", backbone_weights, report.summary())
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["MODELS", "PADDLESEG", "PYTORCH", "VARIANTS", "SegOutputs", "create_model", "count_parameters",
           "state_variant"]
