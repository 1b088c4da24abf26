"""Memory over a long explain run: thousands of small images through the real pipeline.

Samples the resident memory of the driver and of every Ray worker holding a model while the run
goes on, and reports the peak in the first and in the last tenth of the run: flat means no leak
per shard (hooks, graphs, cached tensors, zarr handles).

    .venv/bin/python -m benchmarks.bench_memory [--images 3000] [--out results/bench_memory.md]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

from benchmarks.bench_explain import Timeline
from benchmarks.result_file import write_result
from core.config import load_config
from pipeline.explain import stage as explain
from pipeline.index import stage as index
from pipeline.cluster.session import ray_session


def write_small_images(folder: Path, count: int, size: int = 40) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        target = folder / f"class_{i % 10}"
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(target / f"{i:05d}.png")
    return folder


def sample_memory(samples: list, stop: threading.Event) -> None:
    driver = psutil.Process(os.getpid())
    while not stop.is_set():
        workers = [p for p in psutil.process_iter(["cmdline"]) if any("ModelWorker" in c for c in p.info["cmdline"] or [])]
        try:
            worker_rss = max((p.memory_info().rss for p in workers), default=0)
        except psutil.NoSuchProcess:
            continue
        samples.append((time.perf_counter(), driver.memory_info().rss, worker_rss))
        time.sleep(0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("results/bench_memory.md"))
    args = parser.parse_args()
    overrides = ["explain.models=[{arch: 'tests.helpers.models:tiny_cnn', name: tiny, classes: 10, input_size: 32}]",
                 "explain.num_classes=10", "store.map_size=32", "store.shard_size=16",
                 "explain.explainers={grad_cam: {}, smooth_grad: {samples: 2}}"]
    samples, stop = [], threading.Event()
    with tempfile.TemporaryDirectory() as scratch, ray_session(load_config("conf/sample.yaml", overrides)):
        root = Path(scratch)
        config = load_config("conf/sample.yaml", overrides + [
            "data.source=imagefolder", f"data.root={write_small_images(root / 'data', args.images)}"])
        sampler = threading.Thread(target=sample_memory, args=(samples, stop))
        sampler.start()
        started = time.perf_counter()
        timeline = Timeline()
        index.run(config, root / "pssl.zarr", timeline)
        explain.run(config, root / "pssl.zarr", timeline)
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
    explain_times = [t for t, n, desc in timeline.events if desc.startswith("explain") and n > 0]
    begin, end = explain_times[0], explain_times[-1]
    tenth = (end - begin) / 10
    first = [s for s in samples if begin <= s[0] <= begin + tenth]
    last = [s for s in samples if end - tenth <= s[0] <= end]
    mib = lambda values: max(values) / 2**20
    lines = ["# Memory over a long explain run", "",
             f"Command: `.venv/bin/python -m benchmarks.bench_memory --images {args.images}`", "",
             f"{args.images} images of 40x40, tiny CNN, Grad-CAM + SmoothGrad, shards of 16, {elapsed:.0f} s in all.", "",
             "| process | peak RSS, first tenth of explain (MiB) | peak RSS, last tenth (MiB) |", "|---|---:|---:|",
             f"| driver | {mib([s[1] for s in first]):.0f} | {mib([s[1] for s in last]):.0f} |",
             f"| busiest model worker | {mib([s[2] for s in first]):.0f} | {mib([s[2] for s in last]):.0f} |"]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
