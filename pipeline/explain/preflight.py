"""Checks that take seconds and save hours, run before indexing (which for ImageNet takes hours).

Without them a run found missing classifier weights only when the explain stage started, and a
request no Ray node can meet (`ray.gpus_per_worker: 1` on CPUs, `ray.cpus_per_worker: 4` on 2 cores)
left every worker pending and `explain: 0/N` on screen forever. A request that fits the cluster but
must wait for busy resources is told, once a minute, so a wait is never silent.
"""
from __future__ import annotations

import sys

import ray

from core.config import ConfigError
from core.schema import PipelineConfig
from pipeline.explain.classifiers import load_classifier, model_specs

WAIT_NOTICE_S = 60.0  # silence for longer than this while workers wait for resources is reported


class ResourceError(ConfigError):
    """Ray resources per worker that no node of the cluster has."""


def check_classifiers(config: PipelineConfig) -> None:
    """Load each configured classifier once on the CPU: missing weights fail here, in one line."""
    for spec in model_specs(config.explain):
        load_classifier(spec)


def worker_request(config: PipelineConfig) -> dict[str, float]:
    return {"CPU": float(config.ray.cpus_per_worker), "GPU": float(config.ray.gpus_per_worker)}


def check_resources(config: PipelineConfig) -> None:
    """Refuse a per-worker request that no alive node of the cluster can ever meet, naming the key to change."""
    request = worker_request(config)
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    if any(all(node.get(kind, 0) >= amount for kind, amount in request.items()) for node in nodes):
        return
    most = {kind: max((node.get(kind, 0) for node in nodes), default=0) for kind in request}
    if request["GPU"] > most["GPU"]:
        fix = "ray.gpus_per_worker=0 to explain on CPUs" if not most["GPU"] else f"ray.gpus_per_worker={most['GPU']:g}"
        raise ResourceError(f"ray.gpus_per_worker={request['GPU']:g}, but no Ray node has that many GPUs "
                            f"(most: {most['GPU']:g}): set {fix}")
    raise ResourceError(f"ray.cpus_per_worker={request['CPU']:g}, but no Ray node has that many CPUs "
                        f"(most: {most['CPU']:g}): set ray.cpus_per_worker={max(1, int(most['CPU']))}")


def wait_for_workers(actors: list, config: PipelineConfig, stage: str) -> None:
    """Return once one worker is up; say so each minute the workers wait (for resources other work holds)."""
    ready = [actor.__ray_ready__.remote() for actor in actors]
    waited = 0.0
    while ready:
        done, _ = ray.wait(ready, num_returns=1, timeout=WAIT_NOTICE_S)
        if done:
            return
        waited += WAIT_NOTICE_S
        request = ", ".join(f"{amount:g} {kind}" for kind, amount in worker_request(config).items() if amount)
        print(f"{stage}: waiting {waited:.0f} s for Ray to start a worker ({request} each; free now: "
              f"{_free()}); lower ray.cpus_per_worker / ray.gpus_per_worker or free the cluster", file=sys.stderr)


def _free() -> str:
    free = ray.available_resources()
    return ", ".join(f"{free.get(kind, 0):g} {kind}" for kind in ("CPU", "GPU"))
