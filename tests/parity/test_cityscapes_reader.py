"""PaddleSeg's Cityscapes dataset + transforms and this project's give the same tensors (`make test-parity`).

A Cityscapes-layout tree with raw `*_gtFine_labelIds.png` only is generated here; in the parity venv
tests/parity/paddle_cityscapes_side.py converts them to `*_gtFine_labelTrainIds.png` with cityscapesScripts'
table and records what PaddleSeg's `Cityscapes` yields. Compared, per image: the val pipeline (Normalize):
labels equal, images to float rounding; the train pipeline with its randomness switched off (ResizeStepScaling
at one factor, a padding-only RandomPaddingCrop, flip with probability 1, Normalize) at factors 1.0 and 2.0:
labels equal; at 0.5 the one known difference, PaddleSeg's nearest-neighbour label resize (OpenCV's,
picking source pixel 2i) against this project's (nearest-exact, 2i+1, the pixel under the output pixel's
centre, as the bilinear image resize places it). Our labels come from the labelIds files through the
table in training/cityscapes.py, PaddleSeg's from cityscapesScripts' conversion, so the table is checked too.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cityscapes import write_cityscapes
from training.cityscapes import IGNORE_INDEX, LABELS, CityscapesSegmentation, read_cityscapes_label
from training.datasets.transforms import Compose, Normalize, build_transforms

PARITY_PYTHON = os.environ.get("PARITY_PYTHON")
if not PARITY_PYTHON:
    pytest.skip("PaddleSeg's Cityscapes reader runs in the parity venv of `make test-parity`", allow_module_level=True)
SIDE = Path(__file__).with_name("paddle_cityscapes_side.py")
PADDLE_MEAN = PADDLE_STD = [0.5, 0.5, 0.5]  # PaddleSeg's Normalize() defaults
IMAGE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cityscapes")
    root = write_cityscapes(folder / "root", images_per_city=2, size=(64, 32), train_ids=False)
    result = subprocess.run([PARITY_PYTHON, str(SIDE), str(root), str(folder / "paddle.npz")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return root, np.load(folder / "paddle.npz")


def test_the_label_table_is_cityscapes_scripts_own(tree):
    _, read = tree
    theirs = {(name, label_id, 255 if train_id == -1 else train_id, tuple(colour))
              for name, label_id, train_id, colour in json.loads(str(read["table"])) if label_id >= 0}
    assert theirs == {(name, label_id, train_id, colour) for name, label_id, train_id, colour in LABELS}


def test_val_pipeline_gives_paddleseg_labels_and_images(tree):
    root, read = tree
    dataset = CityscapesSegmentation(root, "val", Compose([Normalize(PADDLE_MEAN, PADDLE_STD)]), labels="labelIds")
    assert len(dataset) == 2
    for index in range(len(dataset)):
        item = dataset[index]
        assert np.array_equal(item["label"].numpy(), read[f"val_label_{index}"])
        assert np.abs(item["image"].numpy() - read[f"val_image_{index}"]).max() <= IMAGE_TOLERANCE
        # PaddleSeg's labelTrainIds files (cityscapesScripts' conversion) read the same through our reader
        label_ids = dataset.pairs[index][1]
        train_ids = label_ids.with_name(label_ids.name.replace("_labelIds.png", "_labelTrainIds.png"))
        assert np.array_equal(read_cityscapes_label(train_ids), read[f"val_label_{index}"])


def train_items(root: Path, scale: float, crop: list[int]) -> CityscapesSegmentation:
    augment = {"scale": [scale, scale], "crop": crop, "image_pad": 127.5, "flip_prob": 1.0,
               "mean": PADDLE_MEAN, "std": PADDLE_STD}
    return CityscapesSegmentation(root, "train", build_transforms(augment, IGNORE_INDEX), labels="labelIds")


def padded_and_flipped(label: np.ndarray, crop: list[int]) -> np.ndarray:
    width, height = crop
    canvas = np.full((height, width), IGNORE_INDEX, dtype=label.dtype)
    canvas[:label.shape[0], :label.shape[1]] = label
    return canvas[:, ::-1]


def test_train_pipeline_without_randomness_gives_paddleseg_labels(tree):
    root, read = tree
    report = []
    for case, scale in enumerate(read["scales"].tolist()):
        crop = read[f"crop_{case}"].tolist()
        dataset = train_items(root, scale, crop)
        assert len(dataset) == 4
        for index in range(len(dataset)):
            item = dataset[index]
            ours, theirs = item["label"].numpy(), read[f"train_{case}_label_{index}"].astype(np.int64)
            image_error = float(np.abs(item["image"].numpy() - read[f"train_{case}_image_{index}"]).max())
            assert image_error <= IMAGE_TOLERANCE, (scale, index, image_error)
            differing = float((ours != theirs).mean())
            report.append(f"scale {scale} image {index}: crop {crop}, labels differ on {100 * differing:.2f} % "
                          f"of pixels, images by {image_error:.1e}")
            if scale >= 1.0:
                assert np.array_equal(ours, theirs), (scale, index)
            else:  # 0.5: the same pipeline, each taking the other pixel of every 2x2 source block
                raw = dataset.raw(index)[1].astype(np.int64)
                assert np.array_equal(theirs, padded_and_flipped(raw[0::2, 0::2], crop))
                assert np.array_equal(ours, padded_and_flipped(raw[1::2, 1::2], crop))
    print("\n" + "\n".join(report))

