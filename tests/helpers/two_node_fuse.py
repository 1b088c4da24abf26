"""Run as a script: fuse a synthetic store locally and on a two-node local Ray cluster; print a JSON verdict.

A script of its own, so the cluster (ray.cluster_utils.Cluster: a head and a second node, each a real raylet
with its own workers) never meets the local Ray the test session may already hold.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import ray
from ray.cluster_utils import Cluster

from core.store import CONSENSUS, MASK, WEIGHT, open_store
from pipeline.fuse import stage as fuse
from benchmarks.synthetic_store import make_synthetic_store

RULE = {"combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": 1, "write_consensus": True}


def main(work: Path) -> dict:
    local, cluster_store = work / "local.zarr", work / "cluster.zarr"
    for store in (local, cluster_store):
        make_synthetic_store(store, 48, map_size=32, shard=4, noise=1.0, bad=(5, 30), seed=7)
    fuse.run({"fuse": RULE}, local)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 80 * 2**20,
                                                            "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        summary = fuse.run({"fuse": {**RULE, "shards_per_batch": 1}, "ray": {"address": cluster.address}},
                           cluster_store)
        nodes = len(ray.nodes())
    finally:
        ray.shutdown()
        cluster.shutdown()
    a, b = open_store(local), open_store(cluster_store)
    identical = all(np.array_equal(a[name][:], b[name][:], equal_nan=True) for name in (MASK, WEIGHT, CONSENSUS))
    return {"nodes": nodes, "shards_per_node": summary["shards_per_node"], "shards_fused": summary["shards_fused"],
            "identical": identical}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
