"""`python -m tests.helpers.two_node_explain CONFIG OUT`: run generate-labels on a two-node local Ray
cluster (`ray.cluster_utils.Cluster`) and remove the second node once the first shard is explained.

A process of its own because the test session's Ray (`ray_local`) cannot share a process with a
cluster's driver. OUT gets the command's exit code and output, and whether the node was removed mid-run.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml
from ray.cluster_utils import Cluster

from core.store import EXPLAIN_STAGE, progress_name
from pipeline.cli import store_path

NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20}


def main(config_file: str, out: str) -> None:
    config = yaml.safe_load(Path(config_file).read_text())
    first_flag = store_path(config) / progress_name(EXPLAIN_STAGE, config["explain"]["models"][0]["name"]) / "c"
    cluster = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    try:
        second = cluster.add_node(**NODE)
        cluster.wait_for_nodes()
        command = [sys.executable, "-m", "pipeline", "generate-labels", "--config", config_file,
                   f"ray.address={cluster.address}"]
        runs = []
        for attempt in range(2):  # a run that stops on the lost node is resumed by the same command
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            removed_mid_run = False
            if attempt == 0:
                deadline = time.monotonic() + 300
                while time.monotonic() < deadline and process.poll() is None and not first_flag.exists():
                    time.sleep(0.02)
                removed_mid_run = process.poll() is None
                cluster.remove_node(second)
            stdout, stderr = process.communicate(timeout=600)
            runs.append({"returncode": process.returncode, "stdout": stdout, "stderr": stderr,
                         "removed_mid_run": removed_mid_run})
            if process.returncode == 0:
                break
        Path(out).write_text(json.dumps(runs))
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:3])
