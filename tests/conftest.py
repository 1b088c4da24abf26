"""Shared fixtures: one local Ray for the session."""
from __future__ import annotations

import os
import tempfile

import pytest

from tests.helpers.pipeline import RAY_TEST_DIR

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# exported runtimes go to one cache per test session, not the user's (workers inherit it from the driver)
os.environ.setdefault("PSSL_CACHE", tempfile.mkdtemp(prefix="pssl_runtime_cache_"))


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray, started once: every stage reuses an initialised Ray instead of starting its own."""
    import ray

    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False,
             _temp_dir=RAY_TEST_DIR)
    yield ray
    ray.shutdown()
