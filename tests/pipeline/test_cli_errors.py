"""Every mistake a user makes every day ends in one line (traceback only with --debug), never wrong data."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from core.store import INDEX_KEY, INDEX_STAGE, progress_name
from pipeline.cli import store_path
from tests.helpers.cli import ROOT, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.models import TINY_CNN
from tests.helpers.pipeline import tiny_config


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    return lines[-1]


def test_a_read_only_run_root_is_one_line(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=1)
    config = tiny_config(tmp_path, data, run={"root": "/sys/pssl_read_only"})
    result = run_cli(pipeline_command(config, tmp_path, "index"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert one_error_line(result) == "error: Operation not permitted: /sys/pssl_read_only"


def test_debug_shows_the_traceback(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=1)
    config = tiny_config(tmp_path, data, run={"root": "/sys/pssl_read_only"})
    result = run_cli(pipeline_command(config, tmp_path, "index") + ["--debug"])
    assert result.returncode == 1 and "Traceback" in result.stderr and "PermissionError" in result.stderr


def test_a_classifier_that_cannot_load_is_one_line_without_retry_advice(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=2)
    config = tiny_config(tmp_path, data, ray={"workers": 1, "temp_dir": "/tmp/ray_pssl_errors"})
    config["explain"]["models"] = [{"arch": TINY_CNN, "name": "cnn_a", "classes": 10,
                                    "weights": str(tmp_path / "missing.pt")}]
    result = run_cli(pipeline_command(config, tmp_path, "generate-labels"))
    line = one_error_line(result)
    assert result.returncode == 1 and line == f"error: weights file not found: {tmp_path / 'missing.pt'}"
    assert "re-run" not in result.stderr


def test_a_missing_object_model_is_one_line_naming_the_make_target(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=1)
    config = tiny_config(tmp_path, data, objectness=True)
    config["explain"]["objectness"]["model"] = str(tmp_path / "absent.onnx")
    result = run_cli(pipeline_command(config, tmp_path, "generate-labels"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert one_error_line(result) == (f"error: explain.objectness.model: {tmp_path / 'absent.onnx'} does not exist; run "
                                      "`make objectness-model` (or point it at an ONNX file with the same contract)")
    assert not store_path(config).exists()  # refused before the index stage wrote anything


def test_ctrl_c_says_how_to_resume_and_exits_130(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=4)
    config = tiny_config(tmp_path, data, ray={"workers": 1, "temp_dir": "/tmp/ray_pssl_errors"})
    store = store_path(config)
    process = subprocess.Popen(pipeline_command(config, tmp_path, "generate-labels"), cwd=ROOT, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (store / progress_name(INDEX_STAGE, INDEX_KEY)).exists():
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line.strip()]
    assert lines[-1] == "interrupted; re-run the same command to resume" and "Traceback" not in stderr


def test_a_changed_shard_size_on_an_indexed_store_is_refused(tmp_path):
    data = write_image_folder(tmp_path / "data", classes=1, per_class=3)
    config = tiny_config(tmp_path, data, ray={"workers": 1, "temp_dir": "/tmp/ray_pssl_errors"})
    assert run_cli(pipeline_command(config, tmp_path, "index")).returncode == 0
    config["store"]["shard_size"] = 3
    result = run_cli(pipeline_command(config, tmp_path, "index"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert one_error_line(result) == ("error: store.shard_size=3, but this store was made with store.shard_size=2: "
                                      "use that value or a new run name (run.name=...)")
