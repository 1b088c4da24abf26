"""Shared fixtures: one local Ray for the session, small image datasets written to disk."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
RAY_TEST_DIR = "/tmp/ray_pssl_tests"


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray, started once: every stage reuses an initialised Ray instead of starting its own."""
    import ray

    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False,
             _temp_dir=RAY_TEST_DIR)
    yield ray
    ray.shutdown()


def write_photo(path: Path, seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Path:
    """A smooth random picture with a bright blob: enough structure for SLIC and a CNN."""
    rng = np.random.default_rng(seed)
    height, width = size
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([np.sin(x * rng.uniform(2, 6) + c) * 0.5 + 0.5 for c in range(3)], axis=2)
    cy, cx = rng.uniform(0.3, 0.7, size=2)
    blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / 0.02)[..., None] * rng.uniform(0.3, 1, size=3)
    pixels = (np.clip(base * 0.6 + blob, 0, 1) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def write_image_folder(root: Path, classes: int = 2, per_class: int = 3) -> Path:
    for c in range(classes):
        for i in range(per_class):
            write_photo(root / f"class_{c}" / f"img_{i}.png", seed=100 * c + i)
    return root


def tiny_config(tmp_path: Path, data_root: Path, **sections) -> dict:
    """A pipeline config over two random-weight CNNs and cheap explainer settings."""
    config = {
        "run": {"name": "test", "root": str(tmp_path / "runs")},
        "data": {"source": "imagefolder", "root": str(data_root), "min_side": 8},
        "store": {"map_size": 16, "shard_size": 2},
        "ray": {"workers": 2},
        "explain": {
            "seed": 0, "batch_size": 2, "num_classes": 10,
            "models": [{"arch": "tiny_cnn", "name": "cnn_a", "seed": 1, "classes": 10, "input_size": 32},
                       {"arch": "tiny_cnn", "name": "cnn_b", "seed": 2, "classes": 10, "input_size": 32}],
            "explainers": {"grad_cam": {}, "smooth_grad": {"samples": 2},
                           "lime": {"samples": 16, "segments": 8, "batch_size": 16}},
        },
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config
