"""The pipeline's command line as a user meets it: one-line errors, and a killed run that resumes."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import numpy as np
import zarr

from core.store import EXPLAIN_STAGE, progress_name
from tests.helpers.cli import ROOT, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import run_stages, saliency_arrays, tiny_config

def test_missing_data_directory_is_a_one_line_error(tmp_path):
    result = run_cli(pipeline_command(tiny_config(tmp_path, tmp_path / "nowhere"), tmp_path, "index"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "data root does not exist" in result.stderr and "nowhere" in result.stderr


def test_empty_dataset_is_a_one_line_error(tmp_path):
    (tmp_path / "empty" / "class_0").mkdir(parents=True)
    result = run_cli(pipeline_command(tiny_config(tmp_path, tmp_path / "empty"), tmp_path, "index"))
    assert result.returncode == 1 and "no images found" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_run_killed_mid_way_resumes_to_identical_output(ray_local, tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=4)
    reference = run_stages(tiny_config(tmp_path / "reference", data))
    config = tiny_config(tmp_path / "killed", data, ray={"workers": 2, "temp_dir": "/tmp/ray_pssl_cli"})
    store = tmp_path / "killed" / "runs" / "test" / "pssl.zarr"
    assert run_cli(pipeline_command(config, tmp_path, "index")).returncode == 0
    explain = pipeline_command(config, tmp_path, "explain")
    process = subprocess.Popen(explain, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    flags = None
    while time.monotonic() < deadline and process.poll() is None:
        group = zarr.open_group(str(store), mode="r", use_consolidated=False)
        if progress_name(EXPLAIN_STAGE, "cnn_a") in group:
            flags = group[progress_name(EXPLAIN_STAGE, "cnn_a")][:]
            if flags.any():
                break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert flags is not None and flags.any() and not flags.all(), "the run was not caught mid-way"
    finished = run_cli(explain)
    assert finished.returncode == 0, finished.stderr
    resumed = zarr.open_group(str(store), mode="r", use_consolidated=False)
    for name, values in saliency_arrays(reference).items():
        np.testing.assert_array_equal(resumed[name][:], values, err_msg=name)
