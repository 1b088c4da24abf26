"""`make generate-labels ARGS="ray.address=..."` joins a cluster started with `ray start`, token auth included.

The cluster is stopped by ending the process group of its `ray start --block` (never `ray stop`, which
would end every Ray on a shared machine), whatever the test's outcome.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core.store import FUSE_KEY, FUSE_STAGE, open_store, progress_name
from pipeline.cli import store_path
from tests.helpers.cli import ROOT
from tests.helpers.images import write_image_folder
from tests.helpers.pipeline import tiny_config

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def installed_stamp() -> str:
    """The Makefile's venv stamp, named so `make -o` does not reinstall the shared environment."""
    checksum = subprocess.run("cksum < requirements.txt", shell=True, cwd=ROOT, capture_output=True, text=True)
    return f".venv/.installed-{checksum.stdout.split()[0]}"


def head_jobs(address: str, env: dict) -> list[dict]:
    """The jobs the cluster's head has recorded (each driver that joined it), read from its control store."""
    script = ("import json, ray, ray._private.state as state; ray.init(address=%r, logging_level='ERROR'); "
              "print(json.dumps([{k: j[k] for k in ('Entrypoint', 'IsDead')} for j in state.jobs()]))" % address)
    listed = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    return json.loads(listed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_make_joins_a_token_auth_cluster(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    address = f"127.0.0.1:{free_port()}"
    head = subprocess.Popen([str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={address.split(':')[1]}", "--num-cpus=2", "--include-dashboard=false",
                             "--object-store-memory=100000000", "--temp-dir=/tmp/ray_pssl_cluster"],
                            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        data = write_image_folder(tmp_path / "data", classes=2, per_class=2)
        config = tiny_config(tmp_path, data, fuse={"fg_threshold": 0.4, "bg_threshold": 0.2})
        config_file = tmp_path / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the head is ready once `ray status` reaches it
            if subprocess.run([str(RAY), "status", f"--address={address}"], env=env,
                              capture_output=True).returncode == 0:
                break
            time.sleep(1)
        result = subprocess.run(["make", "-o", installed_stamp(), "generate-labels", f"CONFIG={config_file}",
                                 f"ARGS=ray.address={address}"], cwd=ROOT, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert open_store(store_path(config), mode="r")[progress_name(FUSE_STAGE, FUSE_KEY)][:].all()
        drivers = head_jobs(address, env)  # the head's own record: generate-labels ran as a job of this cluster
        assert any("pipeline generate-labels" in job["Entrypoint"] and job["IsDead"] for job in drivers), drivers
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
