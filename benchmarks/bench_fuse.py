"""Fuse throughput against the raw read speed of the same saliency arrays, at two store sizes.

Run: .venv/bin/python -m benchmarks.bench_fuse [--cases 1000:64 20000:64 1000:224] [--out results/bench_fuse.md]
(each case is images:map_size)

For each size a synthetic store is written (not timed), then, with dask's threaded scheduler and
the same worker count: (1) every member's saliency array is read whole-shard by whole-shard and
discarded (read only, after one warm-up pass so both timings see the same page cache), and
(2) the fuse stage runs from scratch on the same arrays. The ratio of their image rates is the
share of the read speed that fusion keeps (the target is >= 0.7).
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from pipeline import fuse
from pipeline.store import open_store, saliency_name
from pipeline.synthetic_store import make_synthetic_store


def _block_size(block: np.ndarray) -> np.ndarray:
    return np.array([block.size])


def read_only_seconds(store: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds to decode every member array once, whole shards at a time, keeping nothing."""
    group = open_store(store, mode="r")
    members = [(m, e) for m in group.attrs["models"] for e in group.attrs["explainers"]]
    totals = []
    for model, explainer in members:
        array = group[saliency_name(model, explainer)]
        x = da.from_zarr(array, chunks=array.shards)
        totals.append(x.map_blocks(_block_size, drop_axis=[1, 2], chunks=((1,) * x.numblocks[0],),
                                   dtype=np.int64).sum())
    started, cpu = time.perf_counter(), time.process_time()
    with dask.config.set(scheduler="threads", num_workers=workers):
        sizes = dask.compute(*totals)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert sum(sizes) == sum(group[saliency_name(m, e)].size for m, e in members)
    return elapsed, cpu


def fuse_seconds(store: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds of a fuse run from scratch."""
    group = open_store(store)
    for name in ("pssl", "progress/fuse"):
        if name in group:
            del group[name]
    if "fuse" in group.attrs:
        del group.attrs["fuse"]
    config = {"fuse": {"fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": workers}}
    started, cpu = time.perf_counter(), time.process_time()
    summary = fuse.run(config, store)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary["images_fused"] == group["index/path"].shape[0]
    return elapsed, cpu


def bench(n: int, map_size: int, shard: int, models: int, explainers: int, workers: int, root: Path) -> dict:
    store = root / f"bench_{n}.zarr"
    made = time.perf_counter()
    make_synthetic_store(store, n, map_size=map_size, shard=shard,
                         models=[f"net_{i}" for i in range(models)],
                         explainers=[f"explainer_{i}" for i in range(explainers)])
    made = time.perf_counter() - made
    read_only_seconds(store, workers)  # warm-up: the page cache now holds the arrays for both timings
    read, read_cpu = read_only_seconds(store, workers)
    fused, fuse_cpu = fuse_seconds(store, workers)
    on_disk = sum(p.stat().st_size for p in (store / "saliency").rglob("*") if p.is_file())
    shutil.rmtree(store)
    return {"images": n, "map_size": map_size, "members": models * explainers, "saliency_mib": on_disk / 2**20,
            "write_s": made,
            "read_s": read, "fuse_s": fused, "read_ms_per_image": 1000 * read / n,
            "fuse_ms_per_image": 1000 * fused / n, "ratio": read / fused,
            "read_cpu_s": read_cpu, "fuse_cpu_s": fuse_cpu, "cpu_ratio": read_cpu / fuse_cpu}


def report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# Fuse benchmark",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_fuse --cases {' '.join(args.cases)} "
        f"--shard {args.shard} --models {args.models} --explainers {args.explainers} --workers {args.workers}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}, dask {dask.__version__}. Synthetic maps (blurred discs plus noise). "
        f"The 20,000-image case uses map size 64: at 224 its saliency alone would be "
        f"{20000 * args.models * args.explainers * 224 * 224 * 2 / 2**30:.0f} GiB uncompressed, so 224 is measured "
        f"at 1,000 images. Shard size {args.shard}, dask threaded scheduler with {args.workers} workers for both "
        "timings.",
        "",
        "ratio = fuse image rate / read-only image rate (read only = decode every member's shards, no compute), "
        "from wall-clock time; CPU ratio = the same from the process's CPU time, which other jobs on the shared "
        "machine disturb less.",
        "",
        "| images | map size | members | saliency on disk (MiB) | read only (s) | fuse (s) | read ms/image "
        "| fuse ms/image | ratio | read CPU (s) | fuse CPU (s) | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['images']} | {r['map_size']} | {r['members']} | {r['saliency_mib']:.0f} | {r['read_s']:.2f} | "
              f"{r['fuse_s']:.2f} | "
              f"{r['read_ms_per_image']:.3f} | {r['fuse_ms_per_image']:.3f} | {r['ratio']:.2f} | "
              f"{r['read_cpu_s']:.1f} | {r['fuse_cpu_s']:.1f} | {r['cpu_ratio']:.2f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["1000:64", "20000:64", "1000:224"],
                        help="images:map_size pairs")
    parser.add_argument("--shard", type=int, default=256)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--explainers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("results/bench_fuse.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_fuse_") as tmp:
        rows = []
        for case in args.cases:
            n, map_size = (int(part) for part in case.split(":"))
            rows.append(bench(n, map_size, args.shard, args.models, args.explainers, args.workers, Path(tmp)))
            print(f"{n} images at {map_size}: read {rows[-1]['read_s']:.2f} s, fuse {rows[-1]['fuse_s']:.2f} s, "
                  f"ratio {rows[-1]['ratio']:.2f}, CPU ratio {rows[-1]['cpu_ratio']:.2f}", flush=True)
    text = report(rows, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
