"""Class ids of an ImageFolder tree: ImageNet WordNet ids get their standard id, never their position."""
from __future__ import annotations

import pytest

from core.imagenet_classes import imagenet_class_id, imagenet_synsets
from core.store import (CLASS_FROM_MAP, CLASS_FROM_POSITION, CLASS_FROM_WNID, CLASS_SOURCES, CLASS_UNKNOWN,
                        INDEX_CLASS_ID, INDEX_CLASS_SOURCE, UNKNOWN_CLASS, class_names)
from pipeline.index import stage as index
from pipeline.cli import store_path
from pipeline.inspect.report import summarize
from pipeline.progress import StageProgress
from pipeline.index.sources import DatasetError, enumerate_images, image_folder
from tests.helpers.images import write_photo
from tests.helpers.pipeline import tiny_config


def test_the_shipped_synsets_are_the_standard_order():
    synsets = imagenet_synsets()
    assert len(synsets) == len(set(synsets)) == 1000 and list(synsets) == sorted(synsets)
    assert imagenet_class_id("n01440764") == 0  # tench
    assert imagenet_class_id("n01443537") == 1  # goldfish
    assert imagenet_class_id("n02123159") == 282  # tiger cat
    assert imagenet_class_id("n07920052") == 967  # espresso
    assert imagenet_class_id("n15075141") == 999  # toilet tissue
    assert imagenet_class_id("n99999999") is None and imagenet_class_id("class_0") is None


def _tree(root, folders):
    for i, folder in enumerate(folders):
        write_photo(root / folder / "a.png", seed=i)
    return root


def test_part_of_imagenet_keeps_the_standard_ids_not_positions(tmp_path):
    root = _tree(tmp_path, ["n02123159", "n07920052", "my_photos"])
    paths, labels, sources, classes = image_folder(root)
    assert paths == ["my_photos/a.png", "n02123159/a.png", "n07920052/a.png"]
    assert labels == [UNKNOWN_CLASS, 282, 967]
    assert sources == [CLASS_UNKNOWN, CLASS_FROM_WNID, CLASS_FROM_WNID]
    assert classes == list(imagenet_synsets())


def test_class_map_and_position_only_when_asked(tmp_path):
    root = _tree(tmp_path / "data", ["cat", "n07920052"])
    class_map = tmp_path / "classes.txt"
    class_map.write_text("# folder id\ncat 281\n")
    config = {"data": {"source": "imagefolder", "root": str(root), "class_map": str(class_map)}}
    listing = enumerate_images(config, tmp_path)
    assert listing.class_ids == [281, 967] and listing.class_sources == [CLASS_FROM_MAP, CLASS_FROM_WNID]
    config["data"].update(class_map=None, class_ids_by_position=True)
    listing = enumerate_images(config, tmp_path)
    assert listing.class_ids == [0, 1] and listing.class_sources == [CLASS_FROM_POSITION] * 2
    assert listing.classes == ["cat", "n07920052"]


def test_a_class_the_classifiers_cannot_predict_is_refused(tmp_path):
    root = _tree(tmp_path / "data", ["n02123159"])
    config = {"data": {"source": "imagefolder", "root": str(root)}, "explain": {"num_classes": 10}}
    with pytest.raises(DatasetError, match=r"class id 282 \(ImageNet WordNet id of the folder\) is outside 0..9"):
        enumerate_images(config, tmp_path)


def test_the_store_records_how_each_id_was_obtained_and_inspect_shows_it(ray_local, tmp_path):
    root = _tree(tmp_path / "data", ["n02123159", "others"])
    config = tiny_config(tmp_path, root, explain={"num_classes": 1000})
    config["data"]["class_ids_by_position"] = False
    path = store_path(config)
    with StageProgress(disable=True) as progress:
        group = index.run(config, path, progress)
    assert list(group[INDEX_CLASS_ID][:]) == [282, UNKNOWN_CLASS]
    assert list(group[INDEX_CLASS_SOURCE][:]) == [CLASS_FROM_WNID, CLASS_UNKNOWN]
    assert class_names(group)[282] == "n02123159"
    assert (f"class ids: 1 from {CLASS_SOURCES[CLASS_UNKNOWN]}, 1 from {CLASS_SOURCES[CLASS_FROM_WNID]}"
            in summarize(path))
