"""Pictures of training predictions for TensorBoard: image | label | prediction, side by side.

With 1001 classes a fixed per-class palette is unreadable, so labels are drawn by role: the class
the image is about in one colour per class id (from a seeded palette), background black, ignore grey.
"""
from __future__ import annotations

import torch

IGNORE_GREY = 128


class PredictionRenderer:
    def __init__(self, mean, std, num_classes: int, ignore_index: int = 255, background: int | None = None):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        generator = torch.Generator().manual_seed(0)
        self.palette = torch.randint(64, 256, (num_classes, 3), generator=generator, dtype=torch.uint8)
        if background is not None:
            self.palette[background] = 0
        self.ignore_index = ignore_index

    def colorize(self, label: torch.Tensor) -> torch.Tensor:
        """[H,W] class ids -> uint8 [3,H,W]."""
        ignore = label == self.ignore_index
        picture = self.palette[label.clamp(0, len(self.palette) - 1)]
        picture[ignore] = IGNORE_GREY
        return picture.permute(2, 0, 1)

    def __call__(self, batch: dict, logits: torch.Tensor) -> torch.Tensor:
        """uint8 [3, H, 3W] for the first sample of `batch`."""
        image = batch["image"][0].float().cpu() * self.std + self.mean
        image = (image * 255).clamp(0, 255).to(torch.uint8)
        label = self.colorize(batch["label"][0].cpu())
        prediction = self.colorize(logits[0].argmax(0))
        return torch.cat([image, label, prediction], dim=2)
