"""The training datasets: store rows -> 1001-class labels and weights aligned with the image."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.store import EXPLAIN_STAGE, STATUS_BAD, StoreError, open_store, progress_name, score_name, write_layout
from tests.helpers.training import (BACKGROUND, BG_WEIGHT, BRIGHT, DARK, IGNORE, NUM_CLASSES, augment_section,
                                    write_store)
from training.datasets import DataError, PaddleSegPsslDataset, PsslStoreDataset
from training.datasets.transforms import build_transforms

PLAIN = augment_section(crop=None, flip=0.0, color=False)
MEAN = torch.tensor(PLAIN["mean"]).view(3, 1, 1) * 255
STD = torch.tensor(PLAIN["std"]).view(3, 1, 1) * 255


def store_dataset(store, augment=PLAIN, **kwargs) -> PsslStoreDataset:
    return PsslStoreDataset(store, NUM_CLASSES, IGNORE, build_transforms(augment, IGNORE), **kwargs)


def raw_pixels(image: torch.Tensor) -> torch.Tensor:
    return image * STD + MEAN


def test_label_and_weight_are_mapped_back_to_the_image_size(tmp_path):
    dataset = store_dataset(write_store(tmp_path, n=4, image_size=(40, 60)))
    sample = dataset[1]
    assert sample["image"].shape == (3, 40, 60) and sample["label"].shape == (40, 60)
    assert sample["label"].dtype == torch.int64 and sample["weight"].dtype == torch.float32
    target = 7  # image 1's target class
    assert torch.all(sample["label"][5:, :28] == target)
    assert torch.all(sample["label"][5:, 32:] == BACKGROUND)
    assert torch.all(sample["label"][0] == IGNORE)  # the map's top row is ignore
    assert torch.allclose(sample["weight"][5:, :28], torch.ones(35, 28))
    assert torch.allclose(sample["weight"][5:, 34:], torch.full((35, 26), BG_WEIGHT / 255))
    assert sample["path"].endswith("n00000001_1.png")


def test_unfused_shards_and_bad_images_are_skipped_and_counted(tmp_path):
    store = write_store(tmp_path, n=6, shard=2, fused=[0, 2], status=[STATUS_BAD] + [1] * 5)
    dataset = store_dataset(store)
    assert len(dataset) == 3  # rows 1, 4, 5
    assert dataset.skipped == {"shard not fused": 2, "status not ok": 1, "no target class": 0}
    assert [dataset[i]["path"].rsplit("/", 1)[-1] for i in range(3)] == [
        "n00000001_1.png", "n00000004_4.png", "n00000005_5.png"]


def test_joint_augmentation_keeps_image_label_and_weight_aligned(tmp_path):
    dataset = store_dataset(write_store(tmp_path, n=2), augment=augment_section(crop=32, color=False))
    saw_padding = saw_flip_side = False
    for epoch in range(12):
        sample = dataset[(epoch % 2, epoch)]
        brightness = raw_pixels(sample["image"])[0]
        label, weight = sample["label"], sample["weight"]
        foreground, background = label == (epoch % 2) * 7, label == BACKGROUND
        # Pixels away from the vertical edge: bright where the label says foreground, dark on background.
        assert (brightness[foreground] > (BRIGHT + DARK) / 2).float().mean() > 0.9
        assert (brightness[background] < (BRIGHT + DARK) / 2).float().mean() > 0.9
        assert (weight[foreground] > 0.75).float().mean() > 0.9
        padding = (label == IGNORE) & (weight == 0) & torch.isclose(brightness, torch.tensor(127.5), atol=0.01)
        saw_padding |= bool(padding.any())
        saw_flip_side |= bool(foreground[:, -1].float().mean() > 0.5)  # object moved to the right edge
    assert saw_padding and saw_flip_side


def test_same_key_same_sample_and_epochs_differ(tmp_path):
    dataset = store_dataset(write_store(tmp_path, n=2), augment=augment_section(crop=32))
    assert torch.equal(dataset[(0, 3)]["image"], dataset[(0, 3)]["image"])
    assert not torch.equal(dataset[(0, 3)]["image"], dataset[(0, 4)]["image"])


def test_store_without_labels_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"no labels \(pssl/mask"):
        store_dataset(write_store(tmp_path, labels=False))


def test_class_count_mismatch_is_a_clear_error(tmp_path):
    store = write_store(tmp_path, n=2, targets=[3, 1000])
    with pytest.raises(DataError, match="class count mismatch.*target class 1000.*num_classes=1001"):
        store_dataset(store)


def test_missing_image_file_is_named(tmp_path):
    store = write_store(tmp_path, n=3)
    (tmp_path / "images" / "n00000002_2.png").unlink()
    with pytest.raises(DataError, match="image file not found: .*n00000002_2.png"):
        store_dataset(store)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no Zarr store"):
        store_dataset(tmp_path / "nowhere.zarr")


def test_nothing_fused_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no usable labelled image.*3 shard not fused"):
        store_dataset(write_store(tmp_path, n=3, shard=1, fused=[]))


def write_paddleseg_release(tmp_path):
    """The released layout: train.txt, the synset list, <wnid>/<name>.JPEG_eiseg.npz beside ImageNet JPEGs."""
    pssl_root, imagenet_root = tmp_path / "pssl", tmp_path / "imagenet"
    synsets = ["n01440764", "n01443537", "n01484850"]
    (pssl_root).mkdir()
    (pssl_root / "imagenet_lsvrc_2015_synsets.txt").write_text("\n".join(synsets) + "\n")
    lines = []
    for wnid, name in (("n01443537", "n01443537_1"), ("n01484850", "n01484850_7")):
        image_dir, label_dir = imagenet_root / "train" / wnid, pssl_root / "train" / wnid
        image_dir.mkdir(parents=True)
        label_dir.mkdir(parents=True)
        Image.fromarray(np.full((24, 36, 3), 90, np.uint8)).save(image_dir / f"{name}.JPEG", format="JPEG")
        mask = np.zeros((24, 36), np.uint8)
        mask[:, :12] = 1
        mask[0, :] = 2  # any value other than 1 (and this project's 255 = ignore) is background
        mask[-1, :] = 255
        np.savez_compressed(label_dir / f"{name}.JPEG_eiseg.npz", mask)
        lines.append(f"train/{wnid}/{name}.JPEG_eiseg.npz")
    (pssl_root / "train.txt").write_text("\n".join(lines) + "\n")
    return pssl_root, imagenet_root


def test_paddleseg_release_labels_use_the_synset_order(tmp_path):
    pssl_root, imagenet_root = write_paddleseg_release(tmp_path)
    dataset = PaddleSegPsslDataset(pssl_root, imagenet_root, NUM_CLASSES, IGNORE, build_transforms(PLAIN, IGNORE))
    assert len(dataset) == 2
    sample = dataset[1]
    assert sample["label"].shape == (24, 36)
    assert torch.all(sample["label"][1:-1, :12] == 2)  # n01484850 is the third synset
    assert torch.all(sample["label"][1:-1, 12:] == BACKGROUND) and torch.all(sample["label"][0] == BACKGROUND)
    assert torch.all(sample["label"][-1] == IGNORE)
    assert torch.all(sample["weight"][:-1] == 1.0) and torch.all(sample["weight"][-1] == 0.0)


def test_paddleseg_release_missing_label_file_is_named(tmp_path):
    pssl_root, imagenet_root = write_paddleseg_release(tmp_path)
    (pssl_root / "train" / "n01443537" / "n01443537_1.JPEG_eiseg.npz").unlink()
    with pytest.raises(DataError, match="PSSL label file not found: .*n01443537_1.JPEG_eiseg.npz"):
        PaddleSegPsslDataset(pssl_root, imagenet_root, NUM_CLASSES, IGNORE, build_transforms(PLAIN, IGNORE))


def test_images_the_classifiers_barely_see_are_left_out_on_request(tmp_path):
    store = write_store(tmp_path, n=4, shard=2)
    group = open_store(store)
    write_layout(group, models=["net"])
    group.create_array(score_name("net"), shape=(4,), dtype=np.float16, chunks=(2,))[:] = [0.9, 0.01, 0.5, 0.04]
    group.create_array(progress_name(EXPLAIN_STAGE, "net"), shape=(2,), dtype=bool, chunks=(1,))[:] = True
    assert len(store_dataset(store)) == 4  # kept by default
    dataset = store_dataset(store, min_target_prob=0.05)
    assert len(dataset) == 2 and dataset.skipped["target probability < 0.05"] == 2
    assert [dataset[i]["path"].rsplit("/", 1)[-1] for i in range(2)] == ["n00000000_0.png", "n00000002_2.png"]
