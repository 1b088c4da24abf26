"""Start or join Ray with this machine's traps handled (quiet logs, bounded object store, short temp dir)."""
from __future__ import annotations

import contextlib
import logging
import os

import ray

from core.config import typed
from core.errors import PsslError
from core.schema import PipelineConfig


class StageError(PsslError, RuntimeError):
    """Shards that failed after Ray's retries; a re-run retries exactly those."""


@contextlib.contextmanager
def ray_session(config: PipelineConfig | dict):
    """Local Ray by default; `ray.address=...` joins a cluster running the same code."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    settings = typed(config, PipelineConfig).ray
    address = settings.address
    if ray.is_initialized():
        yield
        return
    options = dict(logging_level=logging.ERROR, log_to_driver=settings.verbose,
                   include_dashboard=False)
    if address:
        ray.init(address=address, **options)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=settings.num_cpus, object_store_memory=settings.object_store_memory,
                 _temp_dir=settings.temp_dir, **options)
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))
