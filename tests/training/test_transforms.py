"""Joint augmentations: geometry moves image, label and weight together; colour touches the image only."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import ConfigError
from tests.helpers.training import IGNORE, augment_section
from training.datasets.transforms import (ColorDistort, HorizontalFlip, Normalize, PadCrop, RandomScale, ResizeByShort,
                                          build_transforms)


def make_sample(height: int = 20, width: int = 30) -> dict:
    x = torch.arange(width, dtype=torch.float32).expand(height, width)
    image = torch.stack([x * 8, x * 0 + 50, x * 0 + 100])
    label = (x >= width // 3).long() * 1000
    weight = x / width
    return {"image": image, "label": label, "weight": weight, "path": "p"}


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_resize_by_short_keeps_aspect_and_label_values():
    out = ResizeByShort(40)(make_sample(20, 30), rng())
    assert out["image"].shape == (3, 40, 60) and out["label"].shape == (40, 60) == out["weight"].shape
    assert set(out["label"].unique().tolist()) == {0, 1000}  # nearest: no blended class ids


def test_random_scale_draws_within_range():
    sizes = {RandomScale(0.5, 2.0)(make_sample(20, 30), rng(seed))["image"].shape[-2] for seed in range(20)}
    assert min(sizes) >= 10 and max(sizes) <= 40 and len(sizes) > 5


def test_pad_crop_pads_label_with_ignore_and_weight_with_zero():
    out = PadCrop(32, image_pad=127.5, ignore_index=IGNORE)(make_sample(20, 30), rng())
    assert out["image"].shape == (3, 32, 32)
    padded = out["label"] == IGNORE
    assert padded.sum() == 32 * 32 - 20 * 30
    assert torch.all(out["weight"][padded] == 0)
    assert torch.all(out["image"][:, padded] == 127.5)


def test_crop_window_cuts_the_same_place_from_all_three():
    sample = make_sample(40, 50)
    out = PadCrop(16, image_pad=0, ignore_index=IGNORE)(sample, rng(3))
    # Column index is recoverable from the image's red channel (x * 8) and from the weight (x / 50).
    assert torch.allclose(out["image"][0] / 8, out["weight"] * 50)
    assert torch.equal(out["label"], (out["weight"] * 50 >= 50 // 3 - 1e-4).long() * 1000)


def test_flip_moves_image_label_and_weight_together():
    sample = make_sample()
    out = HorizontalFlip(1.0)(sample, rng())
    assert torch.equal(out["image"], sample["image"].flip(-1))
    assert torch.equal(out["label"], sample["label"].flip(-1))
    assert torch.equal(out["weight"], sample["weight"].flip(-1))
    assert HorizontalFlip(0.0)(sample, rng()) is sample


def test_color_distort_changes_only_the_image_and_stays_in_range():
    sample = make_sample()
    out = ColorDistort(0.5, 0.5, 0.5, prob=1.0)(sample, rng(1))
    assert not torch.equal(out["image"], sample["image"])
    assert out["image"].min() >= 0 and out["image"].max() <= 255
    assert out["label"] is sample["label"] and out["weight"] is sample["weight"]


def test_normalize_uses_imagenet_statistics():
    sample = make_sample()
    sample["image"] = torch.full((3, 2, 2), 255 * 0.485)
    out = Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(sample, rng())
    assert torch.allclose(out["image"][0], torch.zeros(2, 2), atol=1e-5)
    assert torch.allclose(out["image"][1], torch.full((2, 2), (0.485 - 0.456) / 0.224), atol=1e-5)


def test_same_seed_same_augmentation():
    transforms = build_transforms(augment_section(crop=24), IGNORE)
    first, second = (transforms(make_sample(), rng(7)) for _ in range(2))
    assert all(torch.equal(first[key], second[key]) for key in ("image", "label", "weight"))


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="mean: Field required"):
        build_transforms({k: v for k, v in augment_section().items() if k != "mean"}, IGNORE)
    with pytest.raises(ConfigError, match="augment.scale"):
        RandomScale(2.0, 0.5)


def test_step_scaling_draws_only_the_listed_factors_and_crops_are_width_by_height():
    sample = {"image": torch.zeros(3, 40, 80), "label": torch.zeros(40, 80, dtype=torch.long),
              "weight": torch.ones(40, 80)}
    scale = RandomScale(0.5, 2.0, step=0.25)
    assert scale.factors.tolist() == [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    widths = {scale(sample, np.random.default_rng(seed))["image"].shape[-1] for seed in range(200)}
    assert widths == {40, 60, 80, 100, 120, 140, 160}
    augment = {"scale": None, "crop": [64, 32], "flip_prob": 0, "mean": [0.0] * 3, "std": [1.0] * 3}
    cropped = build_transforms(augment, 255)(sample, np.random.default_rng(0))
    assert cropped["image"].shape == (3, 32, 64) and cropped["label"].shape == (32, 64)
    padded = PadCrop((48, 96), 0.0, 255)(sample, np.random.default_rng(0))
    assert padded["label"].shape == (48, 96) and (padded["label"] == 255).sum() == 48 * 96 - 40 * 80
