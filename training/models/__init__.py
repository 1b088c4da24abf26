"""Segmentation networks by name: a plain dict and a factory with a helpful error."""
from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from training.models.outputs import SegOutputs
from training.models.pp_liteseg import PPLiteSeg
from training.models.stdc_seg import STDCSeg
from training.models.stdcnet import STDCNet, load_stdcnet_weights

log = logging.getLogger(__name__)


def stdc1_seg(num_classes: int) -> STDCSeg:
    return STDCSeg(num_classes, STDCNet("stdc1"))


def stdc2_seg(num_classes: int) -> STDCSeg:
    return STDCSeg(num_classes, STDCNet("stdc2"))


def pp_liteseg_t(num_classes: int) -> PPLiteSeg:
    return PPLiteSeg(num_classes, STDCNet("stdc1"), decoder_channels=(32, 64, 128), head_channels=(32, 64, 64))


def pp_liteseg_b(num_classes: int) -> PPLiteSeg:
    return PPLiteSeg(num_classes, STDCNet("stdc2"), decoder_channels=(64, 96, 128), head_channels=(64, 64, 64))


MODELS = {"stdc1_seg": stdc1_seg, "stdc2_seg": stdc2_seg, "pp_liteseg_t": pp_liteseg_t, "pp_liteseg_b": pp_liteseg_b}


def create_model(name: str, num_classes: int, backbone_weights: str | Path | None = None) -> nn.Module:
    """Build a network; optionally load ImageNet STDCNet weights (the load report is logged)."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; valid names: {', '.join(sorted(MODELS))}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    model = MODELS[name](num_classes)
    if backbone_weights is not None:
        report = load_stdcnet_weights(model.backbone, backbone_weights)
        if not report.loaded:
            raise ValueError(f"no tensor of {backbone_weights} fits the {name} backbone ({report.summary()})")
        log.info("backbone weights %s: %s", backbone_weights, report.summary())
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = ["MODELS", "SegOutputs", "create_model", "count_parameters"]
