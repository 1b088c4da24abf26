"""The class table: the committed one parses with valid, correctly named ImageNet classes; a wrong row is refused;
cut-outs are read cropped to their alpha."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmarks.composite.catalogue import CLASSES, load_catalogue, load_cutout, stamps_folder
from benchmarks.composite.tables import CompositeError, read_rows
from benchmarks.debian_packages import DebianPackageError
from core.imagenet_classes import imagenet_synsets, readable_name


def test_the_committed_table_parses_and_every_used_class_is_a_named_imagenet_class():
    stamps = load_catalogue()
    assert len(stamps) >= 60
    for stamp in stamps:
        assert 0 <= stamp.class_id < 1000
        assert stamp.class_name == readable_name(imagenet_synsets()[stamp.class_id])
        assert stamp.path.endswith(".png") and "cartoon" not in stamp.path.split("/")
        assert not stamp.path.endswith("_mirror.png")
    assert len({s.class_id for s in stamps}) >= 40


def test_classes_with_several_stamps_appear_in_both_splits():
    splits_of = defaultdict(set)
    for stamp in load_catalogue():
        splits_of[stamp.class_id].add(stamp.split)
    stamps_of = defaultdict(int)
    for stamp in load_catalogue():
        stamps_of[stamp.class_id] += 1
    assert all(splits_of[c] == {"tuning", "heldout"} for c, n in stamps_of.items() if n > 1)


def test_every_unused_row_says_why():
    rows = read_rows(CLASSES, "stamps")
    assert all(row["reason"].strip() for row in rows if not row["use"])
    assert len(rows) > len(load_catalogue())


@pytest.mark.parametrize("row, message", [
    ({"stamp": "a.png", "use": True, "class_id": 84, "class_name": "ostrich", "split": "tuning"},
     "class 84 is 'peacock', not 'ostrich'"),
    ({"stamp": "a.png", "use": True, "class_id": 1000, "class_name": "x", "split": "tuning"}, "not an ImageNet class"),
    ({"stamp": "a.png", "use": False, "reason": " "}, "needs a reason"),
    ({"stamp": "a.png", "use": True, "class_id": 84, "class_name": "peacock", "split": "train"}, "split 'train'"),
])
def test_a_wrong_row_is_refused_with_its_row_named(tmp_path, row, message):
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump({"stamps": [row]}))
    with pytest.raises(CompositeError, match=message) as error:
        load_catalogue(path)
    assert "classes.yaml row 1 (a.png)" in str(error.value)


def test_load_cutout_crops_to_the_alpha_and_refuses_unreadable_files(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[5:9, 10:25] = (200, 100, 50, 255)
    rgba[4, 12, 3] = 10  # a faint pixel still belongs to the cut-out's extent
    Image.fromarray(rgba).save(tmp_path / "thing.png")
    cut = load_cutout(tmp_path, "thing.png")
    assert cut.shape == (5, 15, 4) and (cut[1:, :, 3] == 255).all()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CompositeError, match="cannot read stamp .*broken.png"):
        load_cutout(tmp_path, "broken.png")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "empty.png")
    with pytest.raises(CompositeError, match="keeps no pixel"):
        load_cutout(tmp_path, "empty.png")


@pytest.mark.slow
def test_every_row_names_a_stamp_of_the_package_and_used_ones_are_at_least_128_px():
    try:
        folder = stamps_folder()
    except DebianPackageError as error:
        pytest.skip(f"tuxpaint-stamps-default cannot be fetched here: {error}")
    for row in read_rows(CLASSES, "stamps"):
        assert (folder / row["stamp"]).is_file(), row["stamp"]
    for stamp in load_catalogue():
        with Image.open(folder / stamp.path) as image:
            assert max(image.size) >= 128, stamp.path
        assert load_cutout(folder, stamp.path)[..., 3].max() == 255, stamp.path
