"""A damaged store is never trusted: readers refuse it in one line, a re-run repairs it bit for bit."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from core.store import INDEX_PATH, INDEX_STATUS, MASK, OBJECTNESS, WEIGHT, open_store, saliency_name
from core.store_check import list_arrays, storage_files
from pipeline.index import stage as index
from pipeline.cli import store_path
from pipeline.progress import StageProgress
from tests.helpers.cli import pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import OBJECT_MODEL, generate_labels, tiny_config
from training.datasets.base import DataError
from training.datasets.pssl_store import PsslStoreDataset

FUSE = {"fg_threshold": 0.4, "bg_threshold": 0.2, "num_workers": 1, "combine": "object_regions"}


def shard_file(store, name: str, shard: int):
    array = open_store(store, mode="r")[name]
    k = (array.shards or array.chunks)[0]
    return store / name / storage_files(array, slice(shard * k, shard * k + 1))[0]


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data"), classes=2, per_class=3)


@pytest.fixture(scope="module")
def clean(ray_local, dataset, tmp_path_factory):
    group = generate_labels(tiny_config(tmp_path_factory.mktemp("clean"), dataset, objectness=True, fuse=FUSE))
    return {name: array[:] for name, array in list_arrays(group).items()}


def test_damaged_shards_are_refused_reported_and_repaired_bit_for_bit(ray_local, dataset, clean, tmp_path):
    config = tiny_config(tmp_path, dataset, objectness=True, fuse=FUSE)
    store = generate_labels(config) and store_path(config)
    lime, grad_cam = saliency_name("cnn_a", "lime"), saliency_name("cnn_b", "grad_cam")
    objects = saliency_name(OBJECT_MODEL, OBJECTNESS)
    shard_file(store, lime, 0).unlink()             # deleted maps under fused labels
    truncate(shard_file(store, grad_cam, 2))         # truncated maps
    truncate(shard_file(store, objects, 1))          # truncated object maps
    shard_file(store, MASK, 0).unlink()              # deleted labels over deleted maps
    truncate(shard_file(store, WEIGHT, 1))           # truncated labels

    # every reader refuses, in one line naming the shard and the repair; nothing is written
    refused = run_cli(pipeline_command(config, tmp_path, "fuse"))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"error: fuse: {lime}: shard 0: file {lime}/c/0/0/0 is missing" in refused.stderr
    assert f"generate-labels --config {store.parent / 'config.yaml'}" in refused.stderr
    with pytest.raises(DataError, match=rf"{MASK}: shard 0: file {MASK}/c/0/0/0 is missing .*generate-labels"):
        PsslStoreDataset(store, num_classes=11, ignore_index=255, transforms=None, check_files=False)

    # inspect --verify lists every damaged array, labels included, and does not crash
    verified = run_cli([sys.executable, "-m", "pipeline", "inspect", str(store), "--verify"])
    assert verified.returncode == 1 and "Traceback" not in verified.stderr
    for name, shard in ((lime, 0), (grad_cam, 2), (objects, 1), (MASK, 0), (WEIGHT, 1)):
        assert f"problem: {name}: shard {shard}: file {name}/c/{shard}/0/0 is " in verified.stderr, name
    assert verified.stderr.count("problem:") == 5
    assert "unreadable" in verified.stdout  # the label statistics could not be read, and say so

    # the same command again redoes exactly the damaged shards and gives the clean run's store
    repaired = generate_labels(config)
    assert list_arrays(repaired).keys() == clean.keys()
    for name, values in clean.items():
        np.testing.assert_array_equal(repaired[name][:], values, err_msg=name)
    assert run_cli([sys.executable, "-m", "pipeline", "inspect", str(store), "--verify", "--full"]).returncode == 0


def test_damaged_index_shards_are_rebuilt(ray_local, dataset, tmp_path, capfd):
    config = tiny_config(tmp_path, dataset)
    path = store_path(config)
    with StageProgress(disable=True) as progress:
        group = index.run(config, path, progress)
        before = {name: array[:] for name, array in list_arrays(group).items()}
        shard_file(path, INDEX_STATUS, 1).unlink()
        truncate(shard_file(path, INDEX_PATH, 2))
        index.run(config, path, progress)
    assert f"index: redoing damaged shard 1: {INDEX_STATUS}: shard 1" in capfd.readouterr().err
    for name, values in before.items():
        np.testing.assert_array_equal(group[name][:], values, err_msg=name)
