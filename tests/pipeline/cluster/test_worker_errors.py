"""Errors from inside Ray workers and requests the cluster cannot meet end in one short line: no Ray
traceback, no colour codes, no Ray retry chatter; the worker's traceback is in the log the line names."""
from __future__ import annotations

import re

import pytest

from pipeline.cli import store_path
from pipeline.cluster.worker_errors import LOG_NAME
from tests.helpers.cli import error_line, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.models import FAILING_CNN
from tests.helpers.pipeline import tiny_config


def config_for(tmp_path, **ray) -> dict:
    data = write_image_folder(tmp_path / "data", classes=1, per_class=2)
    return tiny_config(tmp_path, data, ray={"workers": 1, "temp_dir": "/tmp/ray_pssl_errors", **ray})


def failing(tmp_path, fail: str) -> dict:
    config = config_for(tmp_path)
    config["explain"].update(runtime="eager", explainers={"smooth_grad": {"samples": 2}},
                             models=[{"arch": FAILING_CNN, "name": "cnn_x", "classes": 10, "fail": fail}])
    return config


def test_an_error_inside_a_worker_is_one_line_naming_the_shard_and_the_log(tmp_path):
    config = failing(tmp_path, "raise")
    command = pipeline_command(config, tmp_path, "generate-labels")
    line = error_line(run_cli(command))
    log = store_path(config).parent / LOG_NAME
    assert line == ("error: explain cnn_x shard 0: CUDA error: an illegal memory access was encountered; "
                    f"re-run the same command: finished shards are kept (traceback: {LOG_NAME} beside the store)")
    assert "ModelWorker.classify_and_explain" in log.read_text() and "RuntimeError" in log.read_text()
    assert "line " in log.read_text()  # the worker's traceback, file and line
    debug = run_cli(command + ["--debug"])
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "illegal memory access" in debug.stderr


def test_a_worker_process_that_dies_is_one_line(tmp_path):
    line = error_line(run_cli(pipeline_command(failing(tmp_path, "exit"), tmp_path, "generate-labels")))
    assert line == ("error: explain cnn_x shard 0: its worker died on every try (process or node lost); re-run the "
                    f"same command: finished shards are kept (traceback: {LOG_NAME} beside the store)"), line


@pytest.mark.parametrize("ray, expected", [
    ({"gpus_per_worker": 1}, r"error: ray.gpus_per_worker=1, but no Ray node has that many GPUs \(most: 0\): "
                             r"set ray.gpus_per_worker=0 to explain on CPUs$"),
    ({"cpus_per_worker": 1000}, r"error: ray.cpus_per_worker=1000, but no Ray node has that many CPUs "
                                r"\(most: (\d+)\): set ray.cpus_per_worker=\1$"),
])
def test_resources_no_node_has_are_refused_before_indexing(tmp_path, ray, expected):
    config = config_for(tmp_path, **ray)
    line = error_line(run_cli(pipeline_command(config, tmp_path, "generate-labels")))
    assert re.match(expected, line), line
    assert not (store_path(config) / "zarr.json").exists()  # nothing indexed


def test_missing_classifier_weights_are_refused_before_indexing(tmp_path):
    config = config_for(tmp_path)
    config["explain"]["models"][0]["weights"] = str(tmp_path / "missing.pt")
    line = error_line(run_cli(pipeline_command(config, tmp_path, "generate-labels")))
    assert line == f"error: weights file not found: {tmp_path / 'missing.pt'}"
    assert not (store_path(config) / "zarr.json").exists()
