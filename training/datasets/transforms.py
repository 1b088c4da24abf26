"""Joint training augmentations: every geometric step moves the image, the label and the weight together.

A sample is a dict with `image` float32 [3,H,W] in 0..255, `label` int64 [H,W] and `weight` float32
[H,W]. Each transform draws its randomness from the `numpy.random.Generator` it is handed, so a
sample's augmentation is a pure function of its seed: this is what makes a resumed run replay the
same crops and flips as an uninterrupted one, whatever the DataLoader workers did before.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.config import ConfigError, typed
from core.schema import AugmentSection


def _resize(sample: dict, height: int, width: int) -> dict:
    """Bilinear for the image and the weight, nearest for the label (class ids must not blend)."""
    image = F.interpolate(sample["image"][None], size=(height, width), mode="bilinear",
                          align_corners=False)[0]
    # Bilinear weights can overshoot 1 by float rounding (1.0000001), which the loss rejects: clamp.
    weight = F.interpolate(sample["weight"][None, None], size=(height, width), mode="bilinear",
                           align_corners=False)[0, 0].clamp_(0.0, 1.0)
    label = F.interpolate(sample["label"][None, None].float(), size=(height, width),
                          mode="nearest-exact")[0, 0].long()
    return {**sample, "image": image, "label": label, "weight": weight}


def resize_label_weight(mask_label: torch.Tensor, weight: torch.Tensor, height: int, width: int):
    """Map a label/weight pair stored at another resolution onto an image of height x width."""
    if tuple(mask_label.shape) == (height, width):
        return mask_label, weight
    label = F.interpolate(mask_label[None, None].float(), size=(height, width),
                          mode="nearest-exact")[0, 0].long()
    weight = F.interpolate(weight[None, None], size=(height, width), mode="bilinear",
                           align_corners=False)[0, 0].clamp_(0.0, 1.0)
    return label, weight


class ResizeByShort:
    """Scale so the short side equals `short_size`, keeping the aspect ratio."""

    def __init__(self, short_size: int):
        self.short_size = int(short_size)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        height, width = sample["image"].shape[-2:]
        scale = self.short_size / min(height, width)
        return _resize(sample, max(1, round(height * scale)), max(1, round(width * scale)))


class RandomScale:
    """Scale by a factor drawn uniformly from [low, high], or with `step` from low, low + step, ..., high
    (PaddleSeg's ResizeStepScaling: 0.5-2.0 in steps of 0.25 is 7 equally likely factors)."""

    def __init__(self, low: float, high: float, step: float | None = None):
        if not 0 < low <= high:
            raise ConfigError(f"augment.scale must be [low, high] with 0 < low <= high, got {[low, high]}")
        self.low, self.high = float(low), float(high)
        self.factors = None if step is None else np.linspace(low, high, int((high - low) / step + 1))

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        factor = rng.uniform(self.low, self.high) if self.factors is None else float(rng.choice(self.factors))
        height, width = sample["image"].shape[-2:]
        return _resize(sample, max(1, round(height * factor)), max(1, round(width * factor)))


class PadCrop:
    """Pad to at least height x width (label = ignore, weight = 0), then crop a random height x width window."""

    def __init__(self, size: int | tuple[int, int], image_pad: float, ignore_index: int):
        """`size`: one side, or (height, width)."""
        self.height, self.width = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
        self.image_pad, self.ignore_index = float(image_pad), int(ignore_index)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        height, width = sample["image"].shape[-2:]
        pad_h, pad_w = max(0, self.height - height), max(0, self.width - width)
        image, label, weight = sample["image"], sample["label"], sample["weight"]
        if pad_h or pad_w:
            # Pad bottom/right, like the reference; the random crop then moves the padding around.
            image = F.pad(image, (0, pad_w, 0, pad_h), value=self.image_pad)
            label = F.pad(label, (0, pad_w, 0, pad_h), value=self.ignore_index)
            weight = F.pad(weight, (0, pad_w, 0, pad_h), value=0.0)
            height, width = height + pad_h, width + pad_w
        top = int(rng.integers(0, height - self.height + 1))
        left = int(rng.integers(0, width - self.width + 1))
        window = (slice(top, top + self.height), slice(left, left + self.width))
        return {**sample, "image": image[:, window[0], window[1]], "label": label[window],
                "weight": weight[window]}


class HorizontalFlip:
    def __init__(self, prob: float):
        self.prob = float(prob)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        if rng.random() >= self.prob:
            return sample
        return {**sample, "image": sample["image"].flip(-1), "label": sample["label"].flip(-1),
                "weight": sample["weight"].flip(-1)}


class ColorDistort:
    """Brightness, contrast and saturation, each applied with `prob` by a factor in [1-r, 1+r]; image only."""

    def __init__(self, brightness: float, contrast: float, saturation: float, prob: float):
        self.ranges = (float(brightness), float(contrast), float(saturation))
        self.prob = float(prob)

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        image = sample["image"]
        brightness, contrast, saturation = self.ranges
        # Draw every number whether or not it is used, so one sample always consumes the same stream.
        draws = [(rng.random() < self.prob, rng.uniform(1 - r, 1 + r)) for r in self.ranges]
        (use_b, f_b), (use_c, f_c), (use_s, f_s) = draws
        if use_b and brightness:
            image = image * f_b
        if use_c and contrast:
            gray_mean = _gray(image).mean()
            image = (image - gray_mean) * f_c + gray_mean
        if use_s and saturation:
            gray = _gray(image)[None]
            image = (image - gray) * f_s + gray
        return {**sample, "image": image.clamp(0.0, 255.0)}


def _gray(image: torch.Tensor) -> torch.Tensor:
    return 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]


class Normalize:
    """0..255 -> (x/255 - mean) / std per channel."""

    def __init__(self, mean, std):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1) * 255.0

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        return {**sample, "image": (sample["image"] - self.mean) / self.std}


class Compose:
    def __init__(self, steps: list):
        self.steps = steps

    def __call__(self, sample: dict, rng: np.random.Generator) -> dict:
        for step in self.steps:
            sample = step(sample, rng)
        return sample


def build_transforms(augment: AugmentSection | dict, ignore_index: int) -> Compose:
    """Build the pipeline from the config's `augment` section.

    Order (the reference's): resize_by_short -> scale -> crop (pad-crop) -> flip -> color -> normalize.
    A step whose key is null is left out (e.g. evaluation-like loading for benchmarks).
    """
    augment = typed(augment, AugmentSection)
    steps: list = []
    if augment.resize_by_short:
        steps.append(ResizeByShort(augment.resize_by_short))
    if augment.scale:
        steps.append(RandomScale(*augment.scale, step=augment.scale_step))
    if augment.crop:
        crop = augment.crop if isinstance(augment.crop, int) else tuple(reversed(augment.crop))  # [w, h] -> (h, w)
        steps.append(PadCrop(crop, augment.image_pad, ignore_index))
    if augment.flip_prob:
        steps.append(HorizontalFlip(augment.flip_prob))
    if augment.color:
        color = augment.color
        steps.append(ColorDistort(color.brightness, color.contrast, color.saturation, color.prob))
    steps.append(Normalize(augment.mean, augment.std))
    return Compose(steps)
