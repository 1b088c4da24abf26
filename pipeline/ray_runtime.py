"""Start or join Ray with this machine's traps handled (quiet logs, bounded object store, short temp dir)."""
from __future__ import annotations

import contextlib
import logging
import os

import ray

from core.config import get
from core.errors import PsslError


class StageError(PsslError, RuntimeError):
    """Shards that failed after Ray's retries; a re-run retries exactly those."""


@contextlib.contextmanager
def ray_session(config: dict):
    """Local Ray by default; `ray.address=...` joins a cluster running the same code."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = get(config, "ray.address", None)
    if ray.is_initialized():
        yield
        return
    options = dict(logging_level=logging.ERROR, log_to_driver=bool(get(config, "ray.verbose", False)),
                   include_dashboard=False)
    if address:
        ray.init(address=address, **options)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=get(config, "ray.num_cpus", None),
                 object_store_memory=int(get(config, "ray.object_store_memory", 256 * 2**20)),
                 _temp_dir=get(config, "ray.temp_dir", "/tmp/ray_pssl"), **options)
    try:
        yield
    finally:
        ray.shutdown()


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))
