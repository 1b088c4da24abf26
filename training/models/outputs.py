"""The training-mode output contract shared by every segmentation network and the loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SegOutputs:
    """What a network returns in train mode.

    logits: main head first, then the auxiliary heads; each [N, classes, H, W] at the input size.
    detail: STDC-Seg's boundary logits [N, 1, H, W] (None for networks without a detail head).
    """

    logits: list[torch.Tensor]
    detail: torch.Tensor | None = None
