"""A refused run changes nothing on disk, and settings that would change finished maps are refused or redone."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from core.store import open_store, recorded_map_settings, store_models
from core.store_check import list_arrays
from pipeline.cli import store_path
from tests.helpers.cli import error_line, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import generate_labels, tiny_config
from tests.helpers.store_files import checksums

FUSE = {"fg_threshold": 0.4, "bg_threshold": 0.2, "num_workers": 1}


def finished_store(tmp_path) -> dict:
    data = write_image_folder(tmp_path / "data", classes=2, per_class=2)
    config = tiny_config(tmp_path, data, fuse=FUSE)
    generate_labels(config)
    return config


@pytest.fixture(scope="module")
def finished(ray_local, tmp_path_factory) -> dict:
    """One finished store shared by the refusal tests: each asserts it leaves every byte as it was."""
    return finished_store(tmp_path_factory.mktemp("finished"))


def test_a_run_refused_by_a_later_stage_changes_nothing_and_the_repair_command_still_works(finished, tmp_path):
    config = finished
    store = store_path(config)
    before = checksums(store.parent)
    fewer = {**config, "explain": {**config["explain"], "models": config["explain"]["models"][:1]}}

    line = error_line(run_cli(pipeline_command(fewer, tmp_path, "generate-labels")))
    assert "explain.models: drops cnn_b" in line and "explain.overwrite=true redoes them" in line, line
    assert checksums(store.parent) == before
    assert store_models(open_store(store, mode="r")) == ["cnn_a", "cnn_b"]

    # the README's repair command (the recorded config) still runs, and finds nothing to change
    repaired = run_cli([sys.executable, "-m", "pipeline", "generate-labels", "--config", str(store.parent / "config.yaml")])
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    assert "0 images in 0 shards fused (2 already done)" in repaired.stdout
    assert checksums(store.parent) == before


def test_a_fuse_refusal_after_explain_would_have_run_changes_nothing(finished, tmp_path):
    config = finished
    store = store_path(config)
    before = checksums(store.parent)
    more = {**config, "explain": {**config["explain"], "models": config["explain"]["models"]
                                  + [{**config["explain"]["models"][0], "name": "cnn_c", "seed": 3}]}}

    line = error_line(run_cli(pipeline_command(more, tmp_path, "generate-labels")))
    assert "store was fused with another fuse config (members: 6 -> 9" in line, line
    assert checksums(store.parent) == before


def test_changed_explainer_settings_on_a_finished_store_are_refused_in_one_line(finished, tmp_path):
    config = finished
    store = store_path(config)
    before = checksums(store.parent)
    for command in ("generate-labels", "explain"):
        result = run_cli(pipeline_command(config, tmp_path, command) + ["explain.explainers.lime.samples=8"])
        assert error_line(result) == (
            "error: finished maps were made with other settings (explain.explainers.lime.samples: 16 -> 8); "
            "explain.overwrite=true redoes them, or use a new run (run.name=...)")
        assert checksums(store.parent) == before
    many = ["explain.seed=5", "explain.autocast=bf16", "store.compact=false", "explain.explainers.grad_cam.seed=1",
            "explain.explainers.lime.segments=4", "explain.explainers.smooth_grad.stdev=0.3"]
    line = error_line(run_cli(pipeline_command(config, tmp_path, "explain") + many))
    assert "more); explain.overwrite=true redoes them" in line, line
    assert checksums(store.parent) == before


def test_explain_overwrite_redoes_the_maps_and_labels_as_a_clean_run_makes_them(ray_local, tmp_path):
    config = finished_store(tmp_path / "old")
    changed = {"samples": 8, "segments": 8, "batch_size": 16}
    config["explain"]["explainers"]["lime"] = changed
    config["explain"]["overwrite"] = True
    redone = generate_labels(config)
    clean_config = tiny_config(tmp_path / "clean", tmp_path / "old" / "data", fuse=FUSE)
    clean_config["explain"]["explainers"]["lime"] = changed
    clean = generate_labels(clean_config)
    assert list_arrays(redone).keys() == list_arrays(clean).keys()
    for name, array in list_arrays(clean).items():
        np.testing.assert_array_equal(redone[name][:], array[:], err_msg=name)
    assert recorded_map_settings(redone)["explain.explainers"]["lime"] == changed
