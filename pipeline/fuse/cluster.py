"""Where the fuse stage's shards are fused: on this machine (dask threads), or over a Ray cluster (`ray.address`).

On a cluster each Ray task gets a store path and a contiguous run of shards, opens the store itself and
fuses the run with `pipeline.fuse.stage.fuse_shards` (dask threads inside the task): the task graph holds only
paths and shard numbers, never zarr arrays (dask-on-Ray failed on graphs holding zarr v3 arrays,
shared/DESIGN.md), and a run's shard files have that task as their only writer. The driver yields each
run as its task returns, so the stage sets that run's flags then, exactly as after a local batch: an
interrupted cluster run resumes where it stopped. The labels are the same function of the same maps
wherever a task runs, so a cluster run is bit-identical to a local one (tests/pipeline/fuse/test_cluster.py).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

from core.errors import PsslError
from core.schema import PipelineConfig


def on_cluster(config: PipelineConfig) -> bool:
    return bool(config.ray.address)


def run_length(config: PipelineConfig, workers: int) -> int:
    """Shards per batch by default: two per local thread; on a cluster one per thread of a task, so the runs
    spread over the nodes."""
    return max(1, int(config.ray.cpus_per_worker)) if on_cluster(config) else 2 * workers


def fused_runs(config: PipelineConfig, fuse_shards: Callable, store_path: str | Path, plan, runs: list[tuple[int, int]],
               workers: int, nodes: Counter) -> Iterator[tuple[int, int]]:
    """Fuse each [first, last) run of shards with `fuse_shards(store_path, plan, shards, threads)`
    (pipeline.fuse.stage's), yielding the run once its labels are written; `nodes` counts the shards each Ray node
    fused (empty for a local run)."""
    if not on_cluster(config):
        for first, last in runs:
            fuse_shards(store_path, plan, list(range(first, last)), workers)
            yield first, last
        return
    yield from _ray_runs(config, fuse_shards, str(store_path), plan, runs, nodes)


def _fuse_run_task(fuse_shards: Callable, store_path: str, plan, first: int, last: int, threads: int) -> str:
    """One Ray task: fuse shards first .. last - 1 of the store at `store_path`; returns the node it ran on."""
    import ray

    fuse_shards(store_path, plan, list(range(first, last)), threads)
    return ray.get_runtime_context().get_node_id()


def _ray_runs(config: PipelineConfig, fuse_shards: Callable, store_path: str, plan, runs: list[tuple[int, int]],
              nodes: Counter):
    import ray

    from pipeline.cluster.session import StageError, cluster_cpus, ray_session

    cpus = config.ray.cpus_per_worker
    threads = max(1, int(cpus))
    with ray_session(config):
        task = ray.remote(_fuse_run_task).options(num_cpus=cpus, max_retries=3)
        in_flight = max(2, 2 * int(cluster_cpus() // cpus))  # bounded: every pending task holds its result ref
        queue, running = list(runs), {}
        while queue or running:
            while queue and len(running) < in_flight:
                first, last = queue.pop(0)
                running[task.remote(fuse_shards, store_path, plan, first, last, threads)] = (first, last)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            first, last = running.pop(ref)
            try:
                node = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                for ref in running:
                    ray.cancel(ref)
                if isinstance(error.cause, PsslError):
                    raise error.cause from None
                raise StageError(f"fuse shards {first}-{last - 1} failed on the cluster "
                                 f"({type(error.cause).__name__}: {error.cause}); re-run the same command to "
                                 "retry them") from None
            except ray.exceptions.RayError as error:
                for ref in running:
                    ray.cancel(ref)
                raise StageError(f"fuse shards {first}-{last - 1}: {type(error).__name__} (a node or worker was "
                                 "lost); re-run the same command to retry them") from None
            nodes[node] += last - first
            yield first, last
