"""Does the explain pool's second call in flight per actor pay? `python -m benchmarks.bench_pool [--repeats 3]`.

`ray.util.ActorPool` keeps one call per actor in flight; the explain stage's `run_on_pool` keeps two
(each actor has max_concurrency=2: one shard is decoded while the other's model work runs). This
times the explain stage of the embedded sample (EfficientNet-Lite0, Grad-CAM and a small LIME, shards
of 2, two workers) with one and with two calls in flight, side by side, after one warm-up run.
"""
from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from pathlib import Path

from core.config import load_config
from core.schema import PipelineConfig
from pipeline import cli
from pipeline.explain import stage as explain
from pipeline.index import stage as index
from pipeline.progress import StageProgress
from pipeline.cluster.session import ray_session

OVERRIDES = ["explain.models=[efficientnet_lite0]", "explain.objectness=null", "store.shard_size=2", "ray.workers=2",
             "explain.explainers={grad_cam: {}, lime: {samples: 64, segments: 30, batch_size: 1}}"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    pool = explain.run_on_pool
    seconds: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as scratch:
        config = load_config("conf/sample.yaml", OVERRIDES + [f"run.root={scratch}"], schema=PipelineConfig,
                             context=cli.config_context)
        with ray_session(config), StageProgress() as progress:
            base = Path(scratch) / "indexed" / "pssl.zarr"
            base.parent.mkdir(parents=True)
            index.run(config, base, progress)
            runs = [("warm-up", 2)] + [(f"{r}", n) for r in range(args.repeats) for n in (1, 2)]
            for name, in_flight in runs:
                path = Path(scratch) / f"{name}_{in_flight}" / "pssl.zarr"
                shutil.copytree(base.parent, path.parent)
                explain.run_on_pool = functools.partial(pool, in_flight_per_actor=in_flight)
                started = time.perf_counter()
                explain.run(config, path, progress)
                if name != "warm-up":
                    seconds[in_flight].append(time.perf_counter() - started)
    explain.run_on_pool = pool
    for in_flight, times in seconds.items():
        print(f"{in_flight} call(s) in flight per actor: explain " + " / ".join(f"{t:.1f}" for t in times) + " s")


if __name__ == "__main__":
    main()
