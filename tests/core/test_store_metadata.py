"""A store whose metadata (a zarr.json) is damaged is refused in one line naming the file, by inspect,
--verify, every stage and the training dataset; deleting a damaged label array and re-running rebuilds it."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

from core.errors import PsslError
from core.store import INDEX_PATH, MASK, open_store, saliency_name
from core.store_check import list_arrays
from pipeline.cli import main as pipeline_main
from pipeline.cli import store_path
from tests.helpers.cli import MAX_LINE, error_line, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import generate_labels, tiny_config
from tests.helpers.store_files import checksums
from training.datasets.pssl_store import PsslStoreDataset

FUSE = {"fg_threshold": 0.4, "bg_threshold": 0.2, "num_workers": 1}
LIME = saliency_name("cnn_a", "lime")
DAMAGED = {"": "restore it, or start a new run", INDEX_PATH: "restore it, or start a new run",
           MASK: f"delete {MASK} and re-run generate-labels with its config.yaml",
           LIME: f"delete {LIME} and re-run generate-labels with its config.yaml"}


@pytest.fixture(scope="module")
def finished(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("meta")
    config = tiny_config(root, write_image_folder(root / "data", classes=2, per_class=2), fuse=FUSE)
    generate_labels(config)
    return config


def one_line(capfd) -> str:
    err = capfd.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err and len(lines[0]) <= MAX_LINE, err
    return lines[0]


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_metadata_is_refused_in_one_line_everywhere(finished, name, tmp_path, capfd):
    store = store_path(finished)
    file = store / name / "zarr.json"
    original = file.read_bytes()
    file.write_bytes(original[: len(original) // 2])
    before = checksums(store.parent)
    expected = f"error: {store}: {name + '/' if name else ''}zarr.json is damaged (not valid JSON); {DAMAGED[name]}"
    config_file = pipeline_command(finished, tmp_path)[-1]
    try:
        for arguments in (["inspect", str(store)], ["inspect", str(store), "--verify"],
                          ["generate-labels", "--config", config_file], ["explain", "--config", config_file],
                          ["fuse", "--config", config_file]):
            assert pipeline_main(arguments) == 1, arguments
            assert one_line(capfd).startswith(expected), arguments
        with pytest.raises(PsslError, match="zarr.json is damaged"):
            PsslStoreDataset(store, num_classes=11, ignore_index=255, transforms=None, check_files=False)
        assert checksums(store.parent) == before
    finally:
        file.write_bytes(original)


def test_a_damaged_label_array_is_rebuilt_bit_for_bit_after_the_advice(finished, tmp_path):
    store = store_path(finished)
    labels = {name: array[:] for name, array in list_arrays(open_store(store, mode="r")).items()}
    (store / MASK / "zarr.json").write_text('{"zarr_format": 3, "node_ty')
    line = error_line(run_cli([sys.executable, "-m", "pipeline", "inspect", str(store)]))
    assert line.endswith(f"delete {MASK} and re-run generate-labels with its config.yaml"), line

    shutil.rmtree(store / MASK)
    rebuilt = run_cli([sys.executable, "-m", "pipeline", "generate-labels", "--config", str(store.parent / "config.yaml")])
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    group = open_store(store, mode="r")
    for name, values in labels.items():
        np.testing.assert_array_equal(group[name][:], values, err_msg=name)
