"""The VOC dataset on a small generated dataset in the real VOC layout (palette and grayscale label PNGs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.voc import CLASS_COLOURS, EVAL_TRANSFORMS, MEAN, STD, write_voc
from training.datasets.transforms import build_transforms
from training.palette import VOC_CLASSES, colorize, render_grid, to_palette_png, voc_palette
from training.voc import IGNORE_INDEX, VOCDataError, VOCSegmentation, read_label, resolve_voc_dir


@pytest.fixture
def voc_root(tmp_path):
    return write_voc(tmp_path)


def test_palette_png_is_decoded_by_index_not_colour(tmp_path):
    label = np.array([[0, 1, 15], [255, 20, 8]], dtype=np.uint8)
    to_palette_png(label).save(tmp_path / "label.png")
    with Image.open(tmp_path / "label.png") as image:
        assert image.mode == "P"
        assert image.convert("RGB").getpixel((2, 0)) == (192, 128, 128)  # person's VOC colour
    np.testing.assert_array_equal(read_label(tmp_path / "label.png"), label)


def test_grayscale_and_16bit_index_pngs_are_read(tmp_path):
    label = np.array([[0, 3], [255, 20]], dtype=np.uint8)
    Image.fromarray(label, mode="L").save(tmp_path / "gray.png")
    Image.fromarray(label.astype(np.uint16)).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(read_label(tmp_path / "gray.png"), label)
    np.testing.assert_array_equal(read_label(tmp_path / "wide.png"), label)


def test_rgb_and_out_of_range_labels_are_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(VOCDataError, match="mode RGB is not an index PNG"):
        read_label(tmp_path / "rgb.png")
    Image.fromarray(np.full((4, 4), 30, dtype=np.uint8), mode="L").save(tmp_path / "bad.png")
    with pytest.raises(VOCDataError, match=r"values \[30\]"):
        read_label(tmp_path / "bad.png")


def test_voc_root_may_be_devkit_its_parent_or_voc2012(voc_root):
    expected = voc_root / "VOC2012"
    assert resolve_voc_dir(voc_root) == expected
    assert resolve_voc_dir(voc_root.parent) == expected
    assert resolve_voc_dir(expected) == expected


def test_missing_dataset_error_explains_the_layout(tmp_path):
    with pytest.raises(VOCDataError) as error:
        resolve_voc_dir(tmp_path / "nowhere")
    message = str(error.value)
    assert "\n" not in message
    for part in ("nowhere", "JPEGImages", "SegmentationClassAug", "train_aug", "val"):
        assert part in message


def test_missing_label_file_is_reported(voc_root):
    victim = next((voc_root / "VOC2012" / "SegmentationClassAug").glob("*.png"))
    victim.unlink()
    with pytest.raises(VOCDataError, match=f"1 files of split 'train_aug' are missing, e.g. .*{victim.name}"):
        VOCSegmentation(voc_root, "train_aug", "SegmentationClassAug", EVAL_TRANSFORMS)


def test_val_items_are_normalised_whole_images_with_ignore_kept(voc_root):
    dataset = VOCSegmentation(voc_root, "val", "SegmentationClass", EVAL_TRANSFORMS)
    assert len(dataset) == 6
    item = dataset[0]
    raw_image, raw_label = dataset.raw(0)
    image, label = item["image"], item["label"]
    assert image.dtype == torch.float32 and label.dtype == torch.int64
    assert image.shape == (3, *raw_label.shape) and label.shape == raw_label.shape
    assert set(label.unique().tolist()) <= {0, 1, 8, 15, IGNORE_INDEX} and (label == IGNORE_INDEX).any()
    assert torch.equal(item["weight"], torch.ones(raw_label.shape))
    assert item["path"].endswith(f"JPEGImages/{dataset.ids[0]}.jpg")
    expected = (raw_image[0, 0] / 255.0 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(image[:, 0, 0].numpy(), expected, atol=1e-5)


def test_train_aug_labels_match_the_palette_labels(voc_root):
    aug = VOCSegmentation(voc_root, "train_aug", "SegmentationClassAug", EVAL_TRANSFORMS)
    plain = VOCSegmentation(voc_root, "train", "SegmentationClass", EVAL_TRANSFORMS)
    for index in range(len(aug)):
        np.testing.assert_array_equal(aug.raw(index)[1], plain.raw(index)[1])


def test_augmented_items_are_crops_padded_with_ignore_and_aligned_with_their_labels(voc_root):
    augment = {"resize_by_short": None, "scale": [0.5, 2.0], "crop": 72, "image_pad": 0.0, "flip_prob": 0.5,
               "color": None, "mean": [0.0, 0.0, 0.0], "std": [1 / 255] * 3}  # identity normalisation
    dataset = VOCSegmentation(voc_root, "train_aug", "SegmentationClassAug", build_transforms(augment, IGNORE_INDEX), seed=3)
    padded = 0
    for epoch in range(4):
        for index in range(len(dataset)):
            item = dataset[(index, epoch)]
            image, label = item["image"].permute(1, 2, 0).numpy(), item["label"].numpy()
            assert image.shape == (72, 72, 3) and label.shape == (72, 72)
            assert set(np.unique(label).tolist()) <= {0, 1, 8, 15, IGNORE_INDEX}
            padded += int((image.sum(-1) == 0).sum() > 0)
            for class_id, colour in CLASS_COLOURS.items():
                pixels = image[label == class_id]
                if len(pixels) > 20:  # the class's pixels keep its colour: no misaligned flip or crop
                    median = np.median(pixels, axis=0)
                    nearest = min(CLASS_COLOURS, key=lambda c: np.abs(median - CLASS_COLOURS[c]).sum())
                    assert nearest == class_id
    assert padded > 0  # small images at scale <= 1 need padding


def test_voc_palette_and_rendering(tmp_path, voc_root):
    palette = voc_palette()
    assert len(VOC_CLASSES) == 21
    assert tuple(palette[1]) == (128, 0, 0) and tuple(palette[15]) == (192, 128, 128)
    assert tuple(palette[255]) == (224, 224, 192)
    label = np.array([[0, 1], [15, 255]])
    assert colorize(label)[1, 0].tolist() == [192, 128, 128]
    dataset = VOCSegmentation(voc_root, "val", "SegmentationClass", EVAL_TRANSFORMS)
    rows = [(*dataset.raw(index), dataset.raw(index)[1]) for index in range(3)]
    path = render_grid(rows, tmp_path / "grid.png", tile_height=50)
    with Image.open(path) as grid:
        assert grid.height == 14 + 3 * 50 and grid.width % 3 == 0
        pixels = np.asarray(grid.convert("RGB"))
    # the ground-truth column shows palette colours of the classes drawn
    truth_tile = pixels[14:64, grid.width // 3: 2 * grid.width // 3]
    colours = {tuple(colour) for colour in truth_tile.reshape(-1, 3)}
    assert tuple(palette[0]) in colours and len(colours & {tuple(palette[c]) for c in (1, 8, 15)}) >= 1
