"""Broken symlinks and files that vanish after indexing are recorded as bad; their shard still gets its maps."""
from __future__ import annotations

import numpy as np

from core.store import (EXPLAIN_STAGE, IGNORE, INDEX_ERROR, INDEX_PATH, INDEX_STATUS, MASK, STATUS_BAD, STATUS_OK,
                        open_store, progress_name, saliency_name, scale_name)
from core.store_check import list_arrays
from pipeline.explain import stage as explain
from pipeline.fuse import stage as fuse
from pipeline.index import stage as index
from pipeline.cli import store_path
from pipeline.progress import StageProgress
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import generate_labels, tiny_config


def test_broken_link_and_vanished_file_are_bad_and_the_shard_is_still_explained(ray_local, tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=3)
    (data / "class_0" / "img_3.png").symlink_to(tmp_path / "nowhere.png")  # shard 1 with img_2
    config = tiny_config(tmp_path, data, fuse={"fg_threshold": 0.4, "bg_threshold": 0.2})
    path = store_path(config)
    with StageProgress(disable=True) as progress:
        index.run(config, path, progress)
        (data / "class_0" / "img_0.png").unlink()  # vanishes after indexing; img_1 shares its shard
        explain.run(config, path, progress)
    fuse.run(config, path)

    group = open_store(path, mode="r")
    paths, status, errors = list(group[INDEX_PATH][:]), group[INDEX_STATUS][:], group[INDEX_ERROR][:]
    assert paths == [f"class_0/img_{i}.png" for i in range(4)]
    assert list(status) == [STATUS_BAD, STATUS_OK, STATUS_OK, STATUS_BAD]
    assert errors[0] == "since indexing: file not found"
    assert errors[3] == f"broken symbolic link to {tmp_path / 'nowhere.png'}"
    assert group[progress_name(EXPLAIN_STAGE, "cnn_a")][:].all()
    for row in (1, 2):  # the rest of each shard has its maps and labels
        assert group[scale_name("cnn_a", "smooth_grad")][row] > 0
        assert np.abs(group[saliency_name("cnn_a", "lime")][row]).max() > 0
        assert (group[MASK][row] != IGNORE).any()
    assert (group[MASK][0] == IGNORE).all() and (group[MASK][3] == IGNORE).all()

    before = {name: array[:] for name, array in list_arrays(group).items()}
    again = generate_labels(config)  # a re-run accepts the vanished file as recorded and changes nothing
    for name, values in before.items():
        np.testing.assert_array_equal(again[name][:], values, err_msg=name)
