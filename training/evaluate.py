"""Segmentation evaluation: a confusion matrix over a whole split, and flip / multi-scale inference.

mIoU is the mean IoU over the classes that occur, i.e. TP + FP + FN > 0 over the split (in the
ground truth or in the prediction); a class that is in neither has no defined IoU and is left out
(reported as null). This is the standard definition (PaddleSeg, mmseg); on the full VOC val set
every class occurs, so it equals the plain mean over the 21 classes.

An inference mode is a set of views (scale, flipped?) whose softmax probabilities are averaged, as
in the reference's flip and ms+flip numbers up to PaddleSeg 2.7 (the paper's); PaddleSeg 2.8 averages
the logits instead (`average="logits"`). The views of all modes are computed once per image and
shared, so single-scale, flip and ms+flip cost one pass together.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.schema import EvalMode

IGNORE_INDEX = 255


class ConfusionMatrix:
    """Counts [ground truth, prediction] pixel pairs; pixels whose ground truth is `ignore_index` are skipped."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != self.ignore_index
        truth, predicted = target[valid].long(), prediction[valid].long()
        if truth.numel() and (truth.min() < 0 or truth.max() >= self.num_classes):
            raise ValueError(f"target holds values outside 0..{self.num_classes - 1} and {self.ignore_index}")
        if predicted.numel() and (predicted.min() < 0 or predicted.max() >= self.num_classes):
            raise ValueError(f"prediction holds values outside 0..{self.num_classes - 1}")
        counts = torch.bincount(truth * self.num_classes + predicted, minlength=self.num_classes ** 2)
        self.matrix += counts.view(self.num_classes, self.num_classes).cpu()

    def iou(self) -> torch.Tensor:
        """Per-class TP / (TP + FP + FN) as float64; NaN for a class that occurs nowhere."""
        matrix = self.matrix.double()
        true_positive = matrix.diag()
        union = matrix.sum(0) + matrix.sum(1) - true_positive
        return torch.where(union > 0, true_positive / union.clamp(min=1), torch.full_like(union, float("nan")))

    def mean_iou(self) -> float:
        iou = self.iou()
        present = ~iou.isnan()
        return float(iou[present].mean()) if present.any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(self.matrix.diag().sum().double() / total) if total > 0 else float("nan")


@dataclass(frozen=True)
class InferenceMode:
    """A named way to predict: the softmax averaged over every scale, with and without a horizontal flip."""
    name: str
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @property
    def views(self) -> tuple[tuple[float, bool], ...]:
        flips = (False, True) if self.flip else (False,)
        return tuple((scale, flipped) for scale in self.scales for flipped in flips)


def inference_modes(modes: Iterable[EvalMode]) -> list[InferenceMode]:
    """The config's `eval.modes` (checked by the schema) as InferenceModes."""
    return [InferenceMode(mode.name, tuple(mode.scales), mode.flip) for mode in modes]


def forward_view(model: nn.Module, images: torch.Tensor, scale: float, flipped: bool,
                 size_divisor: int = 32) -> torch.Tensor:
    """Logits [N,C,H,W] (float32) at the input size from the model run on the rescaled (and flipped) images.

    The rescaled input is zero-padded (zero = the mean colour after normalisation) up to a multiple
    of `size_divisor` so every stride of the network divides it, and the padding is cut off again.
    """
    height, width = images.shape[-2:]
    view = images.flip(-1) if flipped else images
    if scale != 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        view = F.interpolate(view, size=size, mode="bilinear", align_corners=False)
    scaled_h, scaled_w = view.shape[-2:]
    pad_h, pad_w = (-scaled_h) % size_divisor, (-scaled_w) % size_divisor
    if pad_h or pad_w:
        view = F.pad(view, (0, pad_w, 0, pad_h))
    logits = model(view)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"a model in eval mode must return a logits tensor, got {type(logits).__name__}")
    logits = logits[..., :scaled_h, :scaled_w].float()
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    return logits.flip(-1) if flipped else logits


AVERAGED = {"softmax": lambda logits: logits.softmax(dim=1), "logits": lambda logits: logits}


@torch.no_grad()
def predict_modes(model: nn.Module, images: torch.Tensor, modes: Sequence[InferenceMode],
                  size_divisor: int = 32, average: str = "softmax") -> dict[str, torch.Tensor]:
    """Mode name -> the mean over its views [N,C,H,W] of their softmax (or, `average="logits"`, their logits);
    each distinct view is run once and shared between modes."""
    views = {view: AVERAGED[average](forward_view(model, images, *view, size_divisor=size_divisor))
             for view in dict.fromkeys(view for mode in modes for view in mode.views)}
    return {mode.name: torch.stack([views[view] for view in mode.views]).mean(0) for mode in modes}


@dataclass
class EvaluationResult:
    class_names: tuple[str, ...]
    matrices: dict[str, ConfusionMatrix]
    modes: list[InferenceMode]
    num_images: int
    samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready: per mode mIoU, pixel accuracy, per-class IoU (null where the class never occurs)."""
        result = {"num_images": self.num_images, "modes": {}}
        for mode in self.modes:
            matrix = self.matrices[mode.name]
            iou = matrix.iou().tolist()
            result["modes"][mode.name] = {
                "scales": list(mode.scales), "flip": mode.flip,
                "mIoU": _finite(matrix.mean_iou()), "pixel_accuracy": _finite(matrix.pixel_accuracy()),
                "per_class_iou": {name: _finite(value) for name, value in zip(self.class_names, iou)},
                "confusion_matrix": matrix.matrix.tolist(),
            }
        return result

    def markdown(self) -> str:
        """The paper-style table: one column per mode, mIoU and pixel accuracy, then per-class IoU (%)."""
        names = [mode.name for mode in self.modes]
        lines = ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

        def row(label: str, values: list[float]) -> str:
            cells = ["–" if np.isnan(value) else f"{100 * value:.2f}" for value in values]
            return f"| {label} | " + " | ".join(cells) + " |"

        lines.append(row("**mIoU**", [self.matrices[name].mean_iou() for name in names]))
        lines.append(row("pixel accuracy", [self.matrices[name].pixel_accuracy() for name in names]))
        per_class = {name: self.matrices[name].iou().tolist() for name in names}
        for index, class_name in enumerate(self.class_names):
            lines.append(row(class_name, [per_class[name][index] for name in names]))
        return "\n".join(lines) + "\n"

    def write(self, out_dir: str | Path, metadata: dict | None = None, stem: str = "results") -> tuple[Path, Path]:
        """`stem`.json (the scores, preceded by `metadata`) and `stem`.md (the table)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        json_path, markdown_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
        write_whole(json_path, json.dumps({**(metadata or {}), **self.to_dict()}, indent=2) + "\n")
        write_whole(markdown_path, self.markdown())
        return json_path, markdown_path


def write_whole(path: Path, text: str) -> None:
    """Through a temporary file beside it, so a kill or a full disk leaves the old file or the new, never half."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def _finite(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


@torch.no_grad()
def evaluate_dataset(model: nn.Module, dataset, modes: Sequence[InferenceMode], class_names: Sequence[str],
                     device: torch.device | str = "cpu", size_divisor: int = 32, num_samples: int = 0,
                     num_workers: int = 0, progress_every: int = 0, average: str = "softmax") -> EvaluationResult:
    """Run every mode over `dataset` (items: dicts with a normalised `image` [3,H,W] and a `label` [H,W]).

    The first `num_samples` items keep (raw image, label, prediction of the first mode) for rendering;
    `dataset.raw(i)` must give the unnormalised image for that.
    """
    was_training = model.training
    model.eval()
    matrices = {mode.name: ConfusionMatrix(len(class_names)) for mode in modes}
    samples = []
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False, num_workers=num_workers)
    count = 0
    for index, batch in enumerate(loader):
        image, label = batch["image"].to(device), batch["label"].to(device)
        probabilities = predict_modes(model, image, modes, size_divisor, average)
        for mode in modes:
            matrices[mode.name].update(probabilities[mode.name].argmax(1), label)
        if index < num_samples:
            raw_image, raw_label = dataset.raw(index)
            prediction = probabilities[modes[0].name].argmax(1)[0].cpu().numpy().astype(np.uint8)
            samples.append((raw_image, raw_label, prediction))
        count += 1
        if progress_every and count % progress_every == 0:
            print(f"evaluated {count}/{len(dataset)} images", flush=True)
    model.train(was_training)
    return EvaluationResult(tuple(class_names), matrices, list(modes), count, samples)
