"""A disk that fills during explain stops the run in one line naming the cause, the place and what to do;
after freeing space the same command finishes a store bit-identical to a clean run's."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from core.store import EXPLAIN_STAGE, open_store, progress_name
from core.store_check import list_arrays
from pipeline.explain import stage as explain
from pipeline.index import stage as index
from pipeline.cli import store_path
from pipeline.disk_space import DiskSpaceError
from pipeline.progress import StageProgress
from pipeline.cluster.worker_errors import LOG_NAME
from tests.helpers.cli import MAX_LINE, ROOT, error_line, pipeline_command, run_cli
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import generate_labels, tiny_config
from tests.helpers.store_files import checksums

FUSE = {"fg_threshold": 0.4, "bg_threshold": 0.2, "num_workers": 1}


@pytest.fixture
def small_disk():
    """A 16 MB tmpfs at a short path (CI runs as root); skipped where mounting is not permitted."""
    folder = Path(tempfile.mkdtemp(prefix="pssl_disk_", dir="/tmp"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)
    folder.rmdir()


def fill(disk: Path) -> Path:
    """Write a filler file until the disk is full."""
    filler = disk / "filler"
    with open(filler, "wb") as file:
        try:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
        except OSError:
            pass
    return filler


def test_a_disk_filling_during_explain_is_one_line_and_the_rerun_is_bit_identical(ray_local, small_disk, tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=6)
    config = tiny_config(small_disk, data, ray={"workers": 2, "temp_dir": "/tmp/ray_pssl_errors"}, fuse=FUSE)
    store = store_path(config)
    command = pipeline_command(config, tmp_path, "generate-labels")
    process = subprocess.Popen(command, cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first_flag = store / progress_name(EXPLAIN_STAGE, "cnn_a") / "c" / "0"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None and not first_flag.exists():
        time.sleep(0.02)
    filler = fill(small_disk)
    stdout, stderr = process.communicate(timeout=300)
    failed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    line = error_line(failed)
    assert "No space left on device" in line and str(small_disk) in line, line
    assert "free space" in line and "re-run" in line and "finished shards are kept" in line, line
    if "(traceback: " in line:  # a worker's error: its traceback went to the log the line names
        log = Path(line.rsplit("(traceback: ", 1)[1].rstrip(")"))
        assert log.name == LOG_NAME and "No space left on device" in log.read_text()

    filler.unlink()
    (store.parent / LOG_NAME).unlink(missing_ok=True)
    repaired = run_cli(command)
    assert repaired.returncode == 0, repaired.stderr[-3000:]
    clean = generate_labels(tiny_config(tmp_path / "clean", data, fuse=FUSE))
    group = open_store(store, mode="r")
    assert list_arrays(group).keys() == list_arrays(clean).keys()
    for name, array in list_arrays(clean).items():
        np.testing.assert_array_equal(group[name][:], array[:], err_msg=name)
    verified = run_cli([sys.executable, "-m", "pipeline", "inspect", str(store), "--verify", "--full"])
    assert verified.returncode == 0, verified.stderr


def test_a_stage_the_free_space_cannot_hold_is_refused_before_it_writes(ray_local, small_disk, tmp_path):
    data = write_image_folder(tmp_path / "data", classes=2, per_class=6)
    config = tiny_config(small_disk, data, store={"map_size": 224, "shard_size": 2})
    store = store_path(config)
    store.parent.mkdir(parents=True)
    with StageProgress(disable=True) as progress:
        index.run(config, store, progress)
        filler = fill(small_disk)
        with open(filler, "r+b") as file:  # leave 256 KB: explain's 12 images x 6 maps at 224^2 need ~0.5 MB
            file.truncate(file.seek(0, 2) - 256 * 1024)
        before = checksums(store.parent)
        with pytest.raises(DiskSpaceError) as refused:
            explain.run(config, store, progress)
    line = str(refused.value)
    assert re.fullmatch(rf"explain will write about 0\.\d MB under {store.parent}, which has 0\.\d MB free: "
                        r"free space there, or use another run\.root, and re-run", line), line
    assert len(line) <= MAX_LINE and checksums(store.parent) == before
