"""The VOC seed yardstick end to end on a generated VOC layout: real Ray, real stores, real scoring."""
import numpy as np
import pytest
import yaml

from benchmarks import voc_seeds
from pipeline.label_quality import decode_ground_truth
from tests.helpers.pipeline import tiny_config
from tests.helpers.voc import write_voc


def test_voc_seeds_labels_the_train_split_and_scores_it(tmp_path, ray_local, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = write_voc(tmp_path, num_images=4)
    voc = root / "VOC2012"
    ids = (voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    config = tiny_config(tmp_path, root)
    config["explain"]["explainers"] = {"grad_cam": {}}
    config["fuse"] = {"fg_threshold": 0.3, "bg_threshold": 0.15, "combine": "none"}
    (tmp_path / "labels.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "map.yaml").write_text("aeroplane: 3\ncat: 7\nperson: null\n")  # classes 1, 8, 15
    assert voc_seeds.main([str(root), "--config", str(tmp_path / "labels.yaml"), "--class-map",
                           str(tmp_path / "map.yaml"), "--out", str(tmp_path / "seeds.md")]) == 0
    listed = (tmp_path / "runs" / "voc_seeds_train" / "file_list.txt").read_text().splitlines()
    for image_id, line in zip(ids, listed):
        dominant = voc_seeds.dominant_class(decode_ground_truth(voc / "SegmentationClass" / f"{image_id}.png", "voc"))
        expected = {1: " 3", 8: " 7", 15: ""}[dominant]  # person: no ImageNet class, the ensemble's top-1
        assert line == f"JPEGImages/{image_id}.jpg{expected}"
    out = capsys.readouterr().out
    assert "VOC 2012 seeds on 4 images" in out and "| cat |" in out and "IRN" in out
    result = voc_seeds.score(tmp_path / "runs" / "voc_seeds_train" / "pssl.zarr", voc, ids)
    assert 0 < result["per_class"]["background"] <= 1 and result["per_class"]["bus"] == 0  # no bus anywhere
    assert result["miou"] == pytest.approx(np.mean(list(result["per_class"].values())))
    assert 0 < result["fg_bg_miou"] <= 1
    assert (tmp_path / "seeds.md").read_text().startswith("# VOC seeds")


def test_voc_seeds_names_a_missing_layout_and_a_bad_class_map(tmp_path, capsys):
    assert voc_seeds.main([str(tmp_path / "nowhere")]) == 1
    assert "Pascal VOC 2012 not found" in capsys.readouterr().err
    root = write_voc(tmp_path, num_images=1)
    (tmp_path / "map.yaml").write_text("kitten: 3\n")
    assert voc_seeds.main([str(root), "--class-map", str(tmp_path / "map.yaml")]) == 1
    assert "['kitten'] are not VOC classes" in capsys.readouterr().err
