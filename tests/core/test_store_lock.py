"""One run per store: a second run stops at once, a stale lock is taken over, read-only commands need none."""
from __future__ import annotations

import json
import socket
import subprocess
import sys

import psutil
import pytest

from core.store import MASK, open_store
from core.store_lock import StoreLocked, lock_path, store_lock
from benchmarks.synthetic_store import make_synthetic_store
from tests.helpers.cli import fuse_only_config, pipeline_command, run_cli


def hold_lock(store, process: psutil.Process) -> None:
    lock_path(store).write_text(json.dumps({"pid": process.pid, "host": socket.gethostname(),
                                            "started": process.create_time()}))


def test_a_second_run_on_the_same_store_stops_at_once(tmp_path):
    store = tmp_path / "run" / "pssl.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        hold_lock(store, psutil.Process(other.pid))
        result = run_cli(pipeline_command(fuse_only_config(store, 0.5), tmp_path, "fuse"))
        assert result.returncode == 1 and result.stderr.count("\n") == 1
        assert f"is in use by pid {other.pid} on {socket.gethostname()}" in result.stderr
        assert MASK not in open_store(store)  # nothing was fused
        inspected = run_cli([sys.executable, "-m", "pipeline", "inspect", str(store)])
        assert inspected.returncode == 0, inspected.stderr  # read-only: no lock needed
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path):
    store = tmp_path / "run" / "pssl.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock_path(store).write_text(json.dumps({"pid": gone.pid, "host": socket.gethostname(), "started": 1.0}))
    result = run_cli(pipeline_command(fuse_only_config(store, 0.5), tmp_path, "fuse"))
    assert result.returncode == 0, result.stderr
    assert f"taking over the stale lock {lock_path(store)} (pid {gone.pid}" in result.stderr
    assert (open_store(store)[MASK][:] != 255).any() and not lock_path(store).exists()


def test_the_lock_is_released_on_error_and_refuses_within_one_process(tmp_path):
    store = tmp_path / "pssl.zarr"
    with pytest.raises(StoreLocked, match="is in use by pid"):
        with store_lock(store):
            assert json.loads(lock_path(store).read_text())["pid"] == psutil.Process().pid
            with store_lock(store):
                pass
    assert not lock_path(store).exists()
