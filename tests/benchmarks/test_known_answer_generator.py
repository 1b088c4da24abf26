"""The known-answer world: masks are exactly the visible object pixels, output is deterministic, and
the files follow the ImageFolder and Pascal VOC + Aug layouts the other stages read."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import ImageFolder

from benchmarks.known_answer.categories import CATEGORIES
from benchmarks.known_answer.generate import generate
from benchmarks.known_answer.scene import Layer, distractor_layer, object_layer, object_pose, render, sample_scene
from core.config import ConfigError, load_config
from training.palette import voc_palette
from training.voc import read_label

SIZE = 64
CONFIG = Path(__file__).resolve().parents[2] / "conf" / "known_answer.yaml"


def world() -> dict:
    return load_config(CONFIG)["world"]


def tiny_config(root: Path, seed: int = 0) -> dict:
    return load_config(CONFIG, [
        f"root={root}", f"seed={seed}", "classes=[cross, ring, star]",
        "classification.image_size=48", "classification.per_class={train: 2, val: 1}",
        "segmentation.image_size=64", "segmentation.images={train: 2, val: 2, aug_extra: 2}",
    ])


def flat_background(colour=(0.0, 0.0, 0.0)) -> Layer:
    return Layer(np.ones((SIZE, SIZE), bool), np.broadcast_to(np.float32(colour), (SIZE, SIZE, 3)).copy(), 0)


def changed_pixels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.any(np.round(a * 255) != np.round(b * 255), axis=2)


@pytest.mark.parametrize("category", CATEGORIES, ids=lambda c: c.name)
def test_mask_is_the_set_of_pixels_the_object_changed(category):
    rng = np.random.default_rng(3)
    background = flat_background()
    instance = object_layer(rng, 1, category, object_pose(rng, SIZE, world(), 1), SIZE, world())
    rgb, labels = render([background, instance])
    empty, _ = render([background])
    assert labels.sum() > 50
    np.testing.assert_array_equal(labels > 0, changed_pixels(rgb, empty))


def test_occluder_removes_exactly_the_pixels_it_covers():
    rng = np.random.default_rng(5)
    pose = object_pose(rng, SIZE, world(), 1)
    layers = [flat_background(), object_layer(rng, 1, CATEGORIES[0], pose, SIZE, world())]
    _, before = render(layers)
    occluder = distractor_layer(rng, SIZE, world(), near=pose)
    rgb, after = render(layers + [occluder])
    hidden = (before > 0) & occluder.pixels
    assert hidden.any(), "the occluder should overlap the object in this seed"
    np.testing.assert_array_equal(after > 0, (before > 0) & ~occluder.pixels)
    np.testing.assert_array_equal(rgb[occluder.pixels], occluder.colours[occluder.pixels])


@pytest.mark.parametrize("seed", range(4))
def test_sampled_scene_mask_equals_the_visible_object_pixels(seed):
    """On a full cluttered scene: removing the object layers changes exactly the labelled pixels."""
    rng = np.random.default_rng(seed)
    objects = {1: CATEGORIES[seed], 2: CATEGORIES[seed + 3]}
    layers = sample_scene(rng, objects, SIZE, world())
    rgb, labels = render(layers)
    without_objects, _ = render([layer for layer in layers if layer.label == 0])
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels > 0).any()
    np.testing.assert_array_equal(labels > 0, changed_pixels(rgb, without_objects))


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    first = all_files(generate(tiny_config(tmp_path / "a")))
    again = all_files(generate(tiny_config(tmp_path / "b")))
    other = all_files(generate(tiny_config(tmp_path / "c", seed=1)))
    assert first == again
    images = [name for name in first if name.startswith("classification/")]
    assert images and all(first[name] != other[name] for name in images)


def test_layouts_follow_imagefolder_and_voc_aug(tmp_path):
    root = generate(tiny_config(tmp_path / "world"))
    manifest = json.loads((root / "world.json").read_text())
    assert manifest["class_names"] == ["cross", "ring", "star"]

    for split, per_class in (("train", 2), ("val", 1)):
        folder = ImageFolder(str(root / "classification" / split))
        assert folder.classes == manifest["class_names"] and len(folder) == 3 * per_class
        for path, _ in folder.samples:
            mask_path = root / "classification_masks" / Path(path).relative_to(root / "classification")
            image, mask = np.asarray(Image.open(path)), np.asarray(Image.open(mask_path))
            assert image.shape == (48, 48, 3) and mask.shape == (48, 48)
            assert set(np.unique(mask)) == {0, 1}

    voc = root / "VOCdevkit" / "VOC2012"
    lists = {name: (voc / "ImageSets" / "Segmentation" / f"{name}.txt").read_text().split()
             for name in ("train", "val", "trainval", "train_aug")}
    assert len(lists["train"]) == 2 and len(lists["val"]) == 2
    assert lists["trainval"] == lists["train"] + lists["val"] and len(lists["train_aug"]) == 4
    palette = voc_palette().flatten().tolist()
    for image_id in lists["trainval"]:
        label_png = Image.open(voc / "SegmentationClass" / f"{image_id}.png")
        assert label_png.mode == "P" and label_png.getpalette()[:24] == palette[:24]
        label = read_label(voc / "SegmentationClass" / f"{image_id}.png", num_classes=4)
        aug = read_label(voc / "SegmentationClassAug" / f"{image_id}.png", num_classes=4)
        assert set(np.unique(aug)) <= {0, 1, 2, 3} and len(np.unique(aug)) >= 2
        assert (label == 255).any(), "SegmentationClass carries VOC's ignore band at boundaries"
        np.testing.assert_array_equal(label[label != 255], aug[label != 255])
        assert Image.open(voc / "JPEGImages" / f"{image_id}.jpg").size == (64, 64)
    for image_id in set(lists["train_aug"]) - set(lists["train"]):
        assert (voc / "SegmentationClassAug" / f"{image_id}.png").is_file()
        assert not (voc / "SegmentationClass" / f"{image_id}.png").exists()


def test_rerun_is_a_no_op_and_a_changed_config_is_refused(tmp_path):
    config = tiny_config(tmp_path / "world")
    root = generate(config)
    stamp = (root / "world.json").stat().st_mtime_ns
    generate(config)
    assert (root / "world.json").stat().st_mtime_ns == stamp
    config["world"]["noise_std"] = 0.0
    with pytest.raises(ConfigError, match="another config"):
        generate(config)


def test_unknown_category_is_named(tmp_path):
    config = tiny_config(tmp_path / "world")
    config["classes"] = ["ring", "unicorn"]
    with pytest.raises(ConfigError, match="unicorn"):
        generate(config)
