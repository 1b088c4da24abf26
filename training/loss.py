"""The PSSL weighted segmentation loss on every head, plus STDC's masked detail loss.

Per head: L = sum_i w_i * a_{y_i} * CE_i / sum_i w_i * a_{y_i}, where w is the per-pixel
confidence of the pseudo label and a the class weight (background_alpha for the background class,
1 otherwise). Ignore pixels contribute nothing, and an all-zero weight gives 0 (with a graph),
never NaN. With w = 1 and no background class this is the ordinary mean cross-entropy.

With OHEM (online hard example mining, as the reference's Cityscapes configs train), each head
keeps only its hard pixels before that mean: those whose predicted probability of the true class is
below a threshold, the threshold raised where needed so that about `min_kept` pixels of the batch
count (PaddleSeg's OhemCrossEntropyLoss rule, `ohem_keep`).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from training.models.layers import resize
from training.models.outputs import SegOutputs

LAPLACIAN = ((-1.0, -1.0, -1.0), (-1.0, 8.0, -1.0), (-1.0, -1.0, -1.0))
DETAIL_STRIDES = (1, 2, 4)
DETAIL_FUSE_WEIGHTS = (0.6, 0.3, 0.1)  # STDC's fixed 1x1 fusion of the three strides
DETAIL_THRESHOLD = 0.1
DICE_SMOOTH = 1.0


def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, pixel_weight: torch.Tensor) -> torch.Tensor:
    """CE [N,H,W] of every pixel; 0 where p == 0 (any target there, e.g. ignore, is never looked up)."""
    safe_target = torch.where(pixel_weight > 0, target, torch.zeros_like(target))
    ce = F.cross_entropy(logits, safe_target, reduction="none")
    return torch.where(pixel_weight > 0, ce, torch.zeros_like(ce))


def weighted_mean(ce: torch.Tensor, pixel_weight: torch.Tensor) -> torch.Tensor:
    """sum(p * CE) / sum(p) over pixels with p > 0; 0 (still differentiable) when sum(p) == 0."""
    weighted = torch.where(pixel_weight > 0, pixel_weight * ce, torch.zeros_like(ce))
    return weighted.sum() / pixel_weight.sum().clamp_min(1e-12)


def ohem_keep(ce: torch.Tensor, candidates: torch.Tensor, thresh: float, min_kept: int) -> torch.Tensor:
    """The pixels [N,H,W] (bool) an OHEM head learns from, out of `candidates` (the labelled pixels).

    p = softmax probability of the true class = exp(-CE). With no more than `min_kept` candidates, all
    count. Otherwise the cut is `thresh`, or the `min_kept`-th smallest p where that is higher, and a
    pixel counts when its p is strictly below the cut (so easy pixels drop out, hard ones always stay).
    No gradient flows through the choice.
    """
    if candidates.sum() <= min_kept:
        return candidates
    with torch.no_grad():
        probability = torch.exp(-ce.detach().float())
        probability = torch.where(candidates, probability, torch.full_like(probability, float("inf")))
        cut = torch.tensor(float(thresh), device=ce.device)
        if min_kept > 0:
            cut = torch.maximum(cut, probability.flatten().kthvalue(min_kept).values)
        return candidates & (probability < cut)


def detail_targets(target: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """STDC's boundary ground truth, masked: returns (boundary [N,1,H,W] float, valid [N,1,H,W] bool).

    A Laplacian of the label map at strides 1, 2 and 4, each thresholded, upsampled (nearest) and
    fused with weights 0.6/0.3/0.1 as STDC does. Unlike STDC, a response whose 3x3 window touches
    an ignore pixel is dropped (the jump to the value 255 is not a class boundary), ignore pixels
    are never targets and are excluded from the loss, and the image border is replicate-padded
    (so the image edge is not a boundary).
    """
    label = target.unsqueeze(1)
    ignore = (label == ignore_index).float()
    label = torch.where(ignore > 0, torch.zeros_like(label), label).float()
    kernel = torch.tensor(LAPLACIAN, device=target.device).view(1, 1, 3, 3)
    padded = F.pad(label, (1, 1, 1, 1), mode="replicate")
    fused = torch.zeros_like(label)
    for stride, weight in zip(DETAIL_STRIDES, DETAIL_FUSE_WEIGHTS):
        response = F.conv2d(padded, kernel, stride=stride)
        near_ignore = F.max_pool2d(ignore, 3, stride=stride, padding=1)
        edge = ((response > DETAIL_THRESHOLD) & (near_ignore == 0)).float()
        fused = fused + weight * resize(edge, label.shape[-2:], mode="nearest")
    valid = ignore == 0
    boundary = ((fused > DETAIL_THRESHOLD) & valid).float()
    return boundary, valid


def detail_loss(detail_logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """BCE + Dice between detail logits and the masked boundary targets (ignore pixels excluded)."""
    boundary, valid = detail_targets(target, ignore_index)
    logits = resize(detail_logits, target.shape[-2:], align_corners=True)
    mask = valid.float()
    bce = F.binary_cross_entropy_with_logits(logits, boundary, reduction="none")
    bce = torch.where(valid, bce, torch.zeros_like(bce)).sum() / mask.sum().clamp_min(1.0)
    prob = torch.sigmoid(logits) * mask
    inter = (prob * boundary).flatten(1).sum(1)
    dice = 1 - (2 * inter + DICE_SMOOTH) / (prob.flatten(1).sum(1) + boundary.flatten(1).sum(1) + DICE_SMOOTH)
    return bce + dice.mean()


class SegmentationLoss:
    """Weighted CE on every head (head_weights, default all 1.0) + detail_weight * detail loss.

    `ohem` = (thresh, min_kept) makes each head's CE an OHEM one (`ohem_keep`); None counts every pixel.

    Call as loss(outputs, target [N,H,W] long, weight [N,H,W] float in [0,1] or None) and get
    (total, parts) where parts maps "main", "aux1", ..., "detail", "total" to floats.
    """

    def __init__(self, num_classes: int, background_index: int | None = None, background_alpha: float = 0.1,
                 head_weights: Sequence[float] | None = None, detail_weight: float = 1.0,
                 ignore_index: int = 255, ohem: tuple[float, int] | None = None):
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a real class id when num_classes={num_classes}; "
                             f"use a value outside [0, {num_classes}), e.g. -1 or {num_classes}")
        if background_index is not None and not 0 <= background_index < num_classes:
            raise ValueError(f"background_index {background_index} is outside [0, {num_classes})")
        if not 0 <= background_alpha:
            raise ValueError(f"background_alpha must be >= 0, got {background_alpha}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.head_weights = None if head_weights is None else [float(w) for w in head_weights]
        self.detail_weight = float(detail_weight)
        self.ohem = ohem
        self.class_alpha = torch.ones(num_classes)
        if background_index is not None:
            self.class_alpha[background_index] = background_alpha

    def __call__(self, outputs: SegOutputs, target: torch.Tensor, weight: torch.Tensor | None = None):
        self._check(outputs, target, weight)
        head_weights = self.head_weights or [1.0] * len(outputs.logits)
        valid = target != self.ignore_index
        safe_target = torch.where(valid, target, torch.zeros_like(target))
        alpha = self.class_alpha.to(target.device)[safe_target]
        confidence = torch.ones_like(alpha) if weight is None else weight.to(alpha.dtype)
        pixel_weight = confidence * alpha * valid

        total, parts = 0.0, {}
        for index, (logits, head_weight) in enumerate(zip(outputs.logits, head_weights)):
            ce = pixel_cross_entropy(resize(logits, target.shape[-2:], align_corners=False), safe_target,
                                     pixel_weight)
            head_pixel_weight = pixel_weight
            if self.ohem is not None:
                kept = ohem_keep(ce, pixel_weight > 0, *self.ohem)
                head_pixel_weight = torch.where(kept, pixel_weight, torch.zeros_like(pixel_weight))
            head_loss = weighted_mean(ce, head_pixel_weight)
            parts["main" if index == 0 else f"aux{index}"] = head_loss.item()
            total = total + head_weight * head_loss
        if outputs.detail is not None and self.detail_weight > 0:
            loss = detail_loss(outputs.detail, target, self.ignore_index)
            parts["detail"] = loss.item()
            total = total + self.detail_weight * loss
        parts["total"] = total.item()
        return total, parts

    def _check(self, outputs: SegOutputs, target: torch.Tensor, weight: torch.Tensor | None) -> None:
        if not outputs.logits:
            raise ValueError("outputs.logits is empty")
        if self.head_weights is not None and len(self.head_weights) != len(outputs.logits):
            raise ValueError(f"{len(self.head_weights)} head_weights for {len(outputs.logits)} heads")
        if target.dim() != 3 or target.dtype != torch.long:
            raise ValueError(f"target must be a long tensor [N,H,W], got {target.dtype} {tuple(target.shape)}")
        if outputs.logits[0].shape[1] != self.num_classes:
            raise ValueError(f"logits have {outputs.logits[0].shape[1]} classes, the loss expects {self.num_classes}")
        bad = (target != self.ignore_index) & ((target < 0) | (target >= self.num_classes))
        if bad.any():
            raise ValueError(f"target holds class id {int(target[bad][0])}, outside [0, {self.num_classes}) "
                             f"and not ignore_index {self.ignore_index}")
        if weight is not None:
            if weight.shape != target.shape or not weight.is_floating_point():
                raise ValueError(f"weight must be a float tensor shaped like target {tuple(target.shape)}, "
                                 f"got {weight.dtype} {tuple(weight.shape)}")
            if weight.numel() and (weight.min() < 0 or weight.max() > 1):
                raise ValueError(f"weight must lie in [0, 1], got [{float(weight.min())}, {float(weight.max())}]")
