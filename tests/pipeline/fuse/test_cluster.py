"""Fuse over a two-node local Ray cluster: both nodes fuse shards and the labels equal a local run's, bit for bit."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers.cli import ROOT


def test_two_nodes_fuse_a_store_with_labels_identical_to_local(tmp_path):
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-m", "tests.helpers.two_node_fuse", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stderr[-3000:]
    verdict = json.loads(result.stdout.strip().splitlines()[-1])
    assert verdict["nodes"] == 2 and verdict["shards_fused"] == 12
    assert len(verdict["shards_per_node"]) == 2, verdict  # both nodes did work
    assert sum(verdict["shards_per_node"].values()) == 12
    assert verdict["identical"]
