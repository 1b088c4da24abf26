"""Cityscapes: the label table, both label files, the layout's errors, and a short fine-tune + evaluation
(single scale, flip, ms+flip) on a generated Cityscapes-layout tree, through the functions and the CLI."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from core.config import load_config
from tests.helpers.cityscapes import write_cityscapes
from tests.helpers.cli import error_line
from tests.helpers.models import TinySegNet
from training.__main__ import main as training_cli
from training.cityscapes import (CITYSCAPES_CLASSES, IGNORE_INDEX, CityscapesDataError, CityscapesSegmentation,
                                 train_id_lookup)
from training.datasets.transforms import Compose, Normalize, build_transforms
from training.finetune_cityscapes import run, run_eval
from training.models import create_model

REPO = Path(__file__).resolve().parents[2]
PSSL_CONFIG = REPO / "conf" / "finetune_cityscapes_pp_liteseg_b_pssl.yaml"
EVAL = Compose([Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])


@pytest.fixture
def one_thread():
    """Tiny models on a shared 2-core machine: two intra-op threads made each step ~25x slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(tmp_path: Path, root: Path, **overrides) -> dict:
    """The shipped PSSL config, shrunk to a CPU-sized run on the generated tree."""
    config = load_config(PSSL_CONFIG, [
        f"run.out_dir={tmp_path / 'run'}", f"data.root={root}", "augment.crop=[32,16]", "train.iterations=40",
        "train.batch_size=4", "train.lr=0.05", "train.warmup_steps=0", "train.workers=0",
        "train.checkpoint_every_steps=0", "train.image_every_steps=0", "loss.head_weights=null",
        "loss.ohem.min_kept=512", "eval.workers=0", "eval.num_samples=2", "eval.progress_every=0",
    ])
    for key, value in overrides.items():
        node = config
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return config


def test_the_label_table_is_cityscapes_official_one():
    lookup = train_id_lookup()
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert {label_id: int(lookup[label_id]) for label_id in (7, 8, 11, 17, 21, 23, 24, 26, 31, 33)} == {
        7: 0, 8: 1, 11: 2, 17: 5, 21: 8, 23: 10, 24: 11, 26: 13, 31: 16, 33: 18}
    ignored = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30, 255]
    assert all(lookup[label_id] == IGNORE_INDEX for label_id in ignored)
    assert sorted(set(range(34)) - set(ignored)) == sorted(np.flatnonzero(lookup < 19).tolist())


def test_label_ids_and_train_ids_files_give_the_same_labels(tmp_path):
    both = write_cityscapes(tmp_path / "both")
    from_train_ids = CityscapesSegmentation(both, "train", EVAL, labels="labelTrainIds")
    from_label_ids = CityscapesSegmentation(both, "train", EVAL, labels="labelIds")
    assert len(from_train_ids) == len(from_label_ids) == 4
    for index in range(4):
        label = from_label_ids.raw(index)[1]
        np.testing.assert_array_equal(label, from_train_ids.raw(index)[1])
        assert set(np.unique(label).tolist()) <= {0, 10, 11, 13, IGNORE_INDEX} and (label == IGNORE_INDEX).any()
    auto = CityscapesSegmentation(both, "val", EVAL)
    assert all(label.name.endswith("_gtFine_labelTrainIds.png") for _, label in auto.pairs)
    raw_only = write_cityscapes(tmp_path / "raw", train_ids=False)
    auto = CityscapesSegmentation(raw_only, "val", EVAL)
    assert all(label.name.endswith("_gtFine_labelIds.png") for _, label in auto.pairs)
    item = auto[0]
    assert item["image"].shape == (3, 32, 64) and item["label"].shape == (32, 64)
    assert item["path"].endswith("frankfurt_000000_000019_leftImg8bit.png")


def test_bad_trees_and_label_files_are_one_line_errors(tmp_path):
    root = write_cityscapes(tmp_path / "data", train_ids=False)
    victim = sorted((root / "gtFine" / "train" / "bochum").glob("*_labelIds.png"))[0]
    Image.fromarray(np.full((32, 64), 40, dtype=np.uint8), mode="L").save(victim)
    with pytest.raises(CityscapesDataError, match=r"values \[40\] are neither a class id < 34"):
        CityscapesSegmentation(root, "train", EVAL).raw(2)
    victim.unlink()
    with pytest.raises(CityscapesDataError, match=r"1 of 4 images of split 'train' have no label, e\.g\. .*bochum"):
        CityscapesSegmentation(root, "train", EVAL)
    with pytest.raises(CityscapesDataError, match="no images of split 'test'"):
        CityscapesSegmentation(root, "test", EVAL)
    train_ids = write_cityscapes(tmp_path / "train_ids", label_ids=False)
    victim = sorted((train_ids / "gtFine" / "val" / "frankfurt").glob("*_labelTrainIds.png"))[0]
    Image.fromarray(np.full((32, 64), 19, dtype=np.uint8), mode="L").save(victim)
    with pytest.raises(CityscapesDataError, match=r"values \[19\] are neither a class id < 19"):
        CityscapesSegmentation(train_ids, "val", EVAL).raw(0)


def test_train_items_are_width_by_height_crops_with_colours_aligned_to_labels(tmp_path):
    root = write_cityscapes(tmp_path / "data")
    augment = {"scale": [0.5, 2.0], "scale_step": 0.25, "crop": [48, 24], "image_pad": 0.0, "flip_prob": 0.5,
               "mean": [0.0] * 3, "std": [1 / 255] * 3}  # identity normalisation
    dataset = CityscapesSegmentation(root, "train", build_transforms(augment, IGNORE_INDEX), seed=1)
    reference = {0: (128, 64, 128), 10: (70, 130, 180), 13: (0, 0, 142), 11: (220, 20, 60)}
    for epoch in range(3):
        for index in range(len(dataset)):
            item = dataset[(index, epoch)]
            image, label = item["image"].permute(1, 2, 0).numpy(), item["label"].numpy()
            assert image.shape == (24, 48, 3) and label.shape == (24, 48)
            for train_id in reference:
                pixels = image[label == train_id]
                if len(pixels) > 10:  # the class's pixels keep its colour: no misaligned flip, scale or crop
                    median = np.median(pixels, axis=0)
                    assert min(reference, key=lambda c: np.abs(median - reference[c]).sum()) == train_id


def test_short_finetune_then_eval_on_a_generated_tree(tmp_path, one_thread):
    root = write_cityscapes(tmp_path / "data", images_per_city=2)
    torch.manual_seed(0)
    torch.save(TinySegNet(num_classes=1001, aux_head=True).state_dict(), tmp_path / "pssl.pt")
    config = small_config(tmp_path, root, **{"model.pretrained": str(tmp_path / "pssl.pt"), "data.val_split": "train"})
    out_dir = run(config, model=TinySegNet(num_classes=19, aux_head=True))

    results = json.loads((out_dir / "results.json").read_text())
    assert results["dataset"] == "Cityscapes" and results["train_steps"] == 40
    assert set(results["skipped"]) == {"head.weight", "head.bias", "aux.weight", "aux.bias"}
    assert results["train_loss"]["last"] < results["train_loss"]["first"]
    assert set(results["modes"]) == {"single scale", "flip", "ms+flip"}
    assert results["modes"]["ms+flip"]["scales"] == [0.75, 1.0, 1.25] and results["modes"]["flip"]["flip"]
    single = results["modes"]["single scale"]
    assert list(single["per_class_iou"]) == list(CITYSCAPES_CLASSES)
    # road, sky, car and person occur: learnt well past chance; the other 15 classes occur nowhere (null).
    assert all(single["per_class_iou"][name] > 0.5 for name in ("road", "sky", "car")), single["per_class_iou"]
    assert sum(value is None for value in single["per_class_iou"].values()) >= 14
    assert single["mIoU"] > 0.5 and results["modes"]["ms+flip"]["mIoU"] > 0.4
    assert "| **mIoU** |" in (out_dir / "results.md").read_text() and (out_dir / "samples.png").stat().st_size
    recorded = yaml.safe_load((out_dir / "config.yaml").read_text())
    assert recorded["loss"]["ohem"] == {"thresh": 0.7, "min_kept": 512} and recorded["data"]["labels"] == "auto"

    evaluated = run_eval({**config, "eval": {**config["eval"], "average": "logits"}},
                         model=TinySegNet(num_classes=19, aux_head=True))
    again = json.loads((evaluated / "results.json").read_text())
    assert again["checkpoint"].endswith("last.pt")
    assert again["modes"]["single scale"]["mIoU"] == pytest.approx(single["mIoU"])  # one view: same either way


def test_cli_without_cityscapes_stops_in_one_line_naming_the_layout(tmp_path, capsys):
    missing = Path("/nonexistent/cityscapes")
    overrides = [f"data.root={missing}", f"run.out_dir={tmp_path / 'run'}"]
    result = subprocess.run([sys.executable, "-m", "training", "finetune-cityscapes", "--config", str(PSSL_CONFIG),
                             *overrides], cwd=REPO, capture_output=True, text=True, timeout=300)
    line = error_line(result)
    assert line == ("error: Cityscapes not found at /nonexistent/cityscapes: it must hold leftImg8bit/<split>/<city>/"
                    "*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelTrainIds.png (or *_labelIds.png)")
    assert training_cli(["eval-cityscapes", "--config", str(PSSL_CONFIG), *overrides]) == 1
    assert capsys.readouterr().err.strip() == line
    assert not (tmp_path / "run").exists()


def test_a_val_split_without_images_fails_before_training(tmp_path):
    root = write_cityscapes(tmp_path / "data")
    shutil.rmtree(root / "leftImg8bit" / "val")
    with pytest.raises(CityscapesDataError, match="no images of split 'val'"):
        run(small_config(tmp_path, root, **{"model.init": "backbone"}), model=TinySegNet(num_classes=19))
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_pp_liteseg_b_finetune_through_the_cli(tmp_path):
    """The real network (three heads, OHEM on each) through `python -m training finetune-cityscapes`, briefly."""
    root = write_cityscapes(tmp_path / "data", images_per_city=1, size=(128, 64))
    torch.manual_seed(0)
    torch.save({"model": create_model("pp_liteseg_b", 1001).state_dict()}, tmp_path / "pssl.pt")
    config = small_config(tmp_path, root, **{"model.pretrained": str(tmp_path / "pssl.pt"), "augment.crop": [64, 64],
                                             "train.iterations": 3, "train.batch_size": 2,
                                             "loss.head_weights": [1, 1, 1], "loss.ohem.min_kept": 2000})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "training", "finetune-cityscapes", "--config",
                             str(tmp_path / "config.yaml")], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    classifiers = [f"seg_heads.{i}.conv_out.{part}" for i in range(3) for part in ("bias", "weight")]
    assert results["train_steps"] == 3 and sorted(results["skipped"]) == classifiers
    assert 0.0 <= results["modes"]["ms+flip"]["mIoU"] <= 1.0
