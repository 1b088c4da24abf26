"""The background table: the committed one parses, a wrong row is refused, and a photo is read as its crop."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from PIL import Image

from benchmarks.composite.backgrounds import (PREPARED_SHORT_SIDE, SCIKIT_IMAGE, Background, load_backgrounds,
                                              load_photo, source_folder)
from benchmarks.composite.tables import CompositeError
from benchmarks.debian_packages import DebianPackageError


def test_the_committed_table_has_at_least_30_photos_in_two_splits():
    backgrounds = load_backgrounds()
    assert len({(b.source, b.file) for b in backgrounds}) >= 30
    for split in ("tuning", "heldout"):
        assert len([b for b in backgrounds if b.split == split]) >= 15


@pytest.mark.parametrize("change, message", [
    ({"crop": [0, 0, 1.2, 1]}, "not inside"), ({"crop": [0, 0, 1]}, "left, top, right, bottom"),
    ({"source": "darknet"}, "unknown source 'darknet'"), ({"split": "both"}, "split 'both'"),
])
def test_a_wrong_row_is_refused(tmp_path, change, message):
    row = {"name": "sky", "source": SCIKIT_IMAGE, "file": "sky.png", "crop": [0, 0, 1, 1], "split": "tuning", **change}
    path = tmp_path / "backgrounds.yaml"
    path.write_text(yaml.safe_dump({"backgrounds": [row]}))
    with pytest.raises(CompositeError, match=message):
        load_backgrounds(path)


def test_the_same_photo_twice_is_refused(tmp_path):
    row = {"source": SCIKIT_IMAGE, "file": "sky.png", "crop": [0, 0, 1, 1], "split": "tuning"}
    path = tmp_path / "backgrounds.yaml"
    path.write_text(yaml.safe_dump({"backgrounds": [{"name": "a", **row}, {"name": "b", **row, "split": "heldout"}]}))
    with pytest.raises(CompositeError, match="photo 'scikit-image:sky.png' appears twice"):
        load_backgrounds(path)


def test_load_photo_reads_the_crop_and_shrinks_it(tmp_path):
    photo = np.zeros((1000, 3000, 3), np.uint8)
    photo[:, 1500:] = 255  # the right half is white: a crop of the left half must not show it
    Image.fromarray(photo).save(tmp_path / "wide.png")
    left = load_photo(Background("wide", SCIKIT_IMAGE, "wide.png", (0, 0, 0.5, 1), "tuning"), tmp_path)
    assert left.shape == (PREPARED_SHORT_SIDE, round(1500 * PREPARED_SHORT_SIDE / 1000), 3) and left.max() == 0
    grey = np.full((300, 300), 90, np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert load_photo(Background("grey", SCIKIT_IMAGE, "grey.png", (0, 0, 1, 1), "tuning"), tmp_path).shape == (
        300, 300, 3)
    with pytest.raises(CompositeError, match="under 256 px"):
        load_photo(Background("grey", SCIKIT_IMAGE, "grey.png", (0, 0, 0.5, 1), "tuning"), tmp_path)
    with pytest.raises(CompositeError, match="cannot read background missing"):
        load_photo(Background("missing", SCIKIT_IMAGE, "missing.png", (0, 0, 1, 1), "tuning"), tmp_path)


def test_scikit_image_photos_come_from_the_installed_wheel():
    assert (source_folder(SCIKIT_IMAGE) / "grass.png").is_file()


@pytest.mark.slow
def test_every_background_loads_from_its_package():
    try:
        photos = [load_photo(b) for b in load_backgrounds()]
    except DebianPackageError as error:
        pytest.skip(f"a background package cannot be fetched here: {error}")
    assert all(256 <= min(p.shape[:2]) <= PREPARED_SHORT_SIDE for p in photos)
