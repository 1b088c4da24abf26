"""Fuse throughput against the raw read speed of the same saliency arrays, at two store sizes.

Run: .venv/bin/python -m benchmarks.bench_fuse [--cases 1000:64 20000:64 1000:224 1000:224:computed ...]
[--out results/bench_fuse.md]. Each case is images:map_size, then optionally ":computed" (fuse
without the q99 arrays the explain stage stores, as for a store written before they existed)
and/or ":consensus" (also store pssl/consensus, fuse.write_consensus=true).

For each size a synthetic store is written (not timed), then, with dask's threaded scheduler and
the same worker count: (1) every member's saliency array is read whole-shard by whole-shard and
discarded (read only, after one warm-up pass so both timings see the same page cache), and
(2) the fuse stage runs from scratch on the same arrays, after the fuse kernels were loaded once
(numba's on-disk cache; a one-time ~0.25 s per process, reported apart). The ratio of their image
rates is the share of the read speed that fusion keeps (the target is >= 0.7).
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

from benchmarks.result_file import write_result
from core.store import (clear_labels, n_images, open_store, q99_name, saliency_name, shard_size, store_explainers,
                        store_models)
from pipeline.fuse import stage as fuse
from pipeline.fuse import rules as fuse_rules
from benchmarks.synthetic_store import make_synthetic_store


def _block_size(block: np.ndarray) -> np.ndarray:
    return np.array([block.size])


def read_only_seconds(store: Path, workers: int) -> tuple[float, float]:
    """(wall, CPU) seconds to decode every member array once, whole shards at a time, keeping nothing."""
    group = open_store(store, mode="r")
    members = [(m, e) for m in store_models(group) for e in store_explainers(group)]
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


def kernel_load_seconds(members: int) -> float:
    """Load (or on a first run compile) the fuse kernels for `members` maps: the per-process fixed cost."""
    started = time.perf_counter()
    maps = [np.zeros((1, 8, 8), np.float16)] * members
    fuse_rules.fuse_maps(maps, fuse_rules.member_weights(None, members, 1), np.array([True]), 0.5, 0.2)
    return time.perf_counter() - started


def shard_breakdown_ms(store: Path, consensus: bool, repeats: int = 3) -> tuple[float, float]:
    """CPU ms per image, single thread, on the first shard: (fuse kernel incl. packing, writing the labels).

    The parts of a fuse run that the read-only pass does not have; the best of `repeats` tries.
    """
    group = open_store(store)
    members = [(m, e) for m in store_models(group) for e in store_explainers(group)]
    k = shard_size(group)
    maps = [group[saliency_name(m, e)][:k] for m, e in members]
    q99 = fuse.stored_q99(group, members, slice(0, k))
    weights, ok = fuse_rules.member_weights(None, len(members), len(maps[0])), np.ones(len(maps[0]), bool)
    scratch = [group.create_array(f"bench_scratch/{field}", shape=maps[0].shape, dtype=dtype,
                                  chunks=(1, *maps[0].shape[1:]), shards=maps[0].shape, compressors=fuse.LABEL_CODEC,
                                  overwrite=True)
               for field, dtype in (("mask", np.uint8), ("weight", np.uint8), ("consensus", np.float16))[:2 + consensus]]
    kernel, write = [], []
    for _ in range(repeats):
        cpu = time.process_time()
        fused = fuse_rules.fuse_maps(maps, weights, ok, 0.5, 0.2, q99=q99, keep_consensus=consensus)
        kernel.append(time.process_time() - cpu)
        cpu = time.process_time()
        for array in scratch:
            array[:] = fused[array.basename]
        write.append(time.process_time() - cpu)
    del group["bench_scratch"]
    return 1000 * min(kernel) / len(maps[0]), 1000 * min(write) / len(maps[0])


def fuse_seconds(store: Path, workers: int, consensus: bool) -> tuple[float, float]:
    """(wall, CPU) seconds of a fuse run from scratch."""
    group = open_store(store)
    clear_labels(group)
    config = {"fuse": {"refine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": workers,
                       "write_consensus": consensus}}
    started, cpu = time.perf_counter(), time.process_time()
    summary = fuse.run(config, store)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert summary["images_fused"] == n_images(group)
    return elapsed, cpu


def bench(n: int, map_size: int, options: set[str], shard: int, models: int, explainers: int, workers: int,
          repeats: int, root: Path) -> dict:
    store = root / f"bench_{n}.zarr"
    make_synthetic_store(store, n, map_size=map_size, shard=shard,
                         models=[f"net_{i}" for i in range(models)],
                         explainers=[f"explainer_{i}" for i in range(explainers)])
    if "computed" in options:
        group = open_store(store)
        for model in store_models(group):
            for explainer in store_explainers(group):
                del group[q99_name(model, explainer)]
    read_only_seconds(store, workers)  # warm-up: the page cache now holds the arrays for both timings
    # read/fuse pairs back to back: the machine's speed drifts over minutes, so each pair's ratio
    # compares like with like, and the median over pairs is reported with the range
    pairs = np.array([read_only_seconds(store, workers) + fuse_seconds(store, workers, "consensus" in options)
                      for _ in range(repeats)])
    read, read_cpu, fused, fuse_cpu = np.median(pairs, axis=0) * 1000 / n
    ratio, cpu_ratio = pairs[:, 0] / pairs[:, 2], pairs[:, 1] / pairs[:, 3]
    kernel, write = shard_breakdown_ms(store, "consensus" in options)
    on_disk, labels = ((sum(p.stat().st_size for p in (store / part).rglob("*") if p.is_file()))
                       for part in ("saliency", "pssl"))
    shutil.rmtree(store)
    return {"images": n, "map_size": map_size, "q99": "computed" if "computed" in options else "stored",
            "consensus": "stored" if "consensus" in options else "no",
            "members": models * explainers, "saliency_mib": on_disk / 2**20, "label_kib_per_image": labels / n / 2**10,
            "kernel_ms": kernel, "label_write_ms": write, "read_ms": read, "fuse_ms": fused, "read_cpu_ms": read_cpu, "fuse_cpu_ms": fuse_cpu,
            "ratio": np.median(ratio), "ratio_range": (ratio.min(), ratio.max()),
            "cpu_ratio": np.median(cpu_ratio), "cpu_ratio_range": (cpu_ratio.min(), cpu_ratio.max())}


def report(rows: list[dict], args: argparse.Namespace, kernel_load: float) -> str:
    lines = [
        "# Fuse benchmark",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_fuse --cases {' '.join(args.cases)} "
        f"--shard {args.shard} --models {args.models} --explainers {args.explainers} --workers {args.workers} "
        f"--repeats {args.repeats}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared with other jobs), "
        f"Python {platform.python_version()}, dask {dask.__version__}. Synthetic maps (blurred discs plus noise). "
        f"The 20,000-image case uses map size 64: at 224 its saliency alone would be "
        f"{20000 * args.models * args.explainers * 224 * 224 * 2 / 2**30:.0f} GiB uncompressed, so 224 is measured "
        f"at 1,000 images. Shard size {args.shard}, dask threaded scheduler with {args.workers} workers for both "
        f"timings. Each case runs {args.repeats} read-only/fuse pairs back to back (this machine is a VM whose "
        "speed drifts by tens of percent within minutes).",
        "",
        "ratio = fuse image rate / read-only image rate (read only = decode every member's shards, no compute), "
        "from wall-clock time, per read/fuse pair: the median over pairs, (min–max) after it; CPU ratio = the "
        "same from the process's CPU time. Times are medians per image. q99 = the per-map percentile read from "
        "the store (written by the explain stage) or computed by the fuse kernel (stores written before it was "
        "stored); consensus = whether pssl/consensus is written too (off by default); labels = pssl/* bytes on "
        f"disk per image. One-time kernel load before the timings: {kernel_load:.2f} s. Breakdown (CPU, one "
        "thread, first shard, best of 3): kernel = `fuse_rules.fuse_maps` (the compiled kernel plus packing its "
        "output), label write = writing that shard's label arrays through zarr; these two are what a fuse run "
        "adds to the read-only pass.",
        "",
        "| images | map size | q99 | consensus | members | saliency on disk (MiB) | read ms/image | fuse ms/image "
        "| ratio | read CPU ms/image | fuse CPU ms/image | CPU ratio | kernel ms/image | label write ms/image "
        "| labels (KiB/image) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['images']} | {r['map_size']} | {r['q99']} | {r['consensus']} | {r['members']} | "
              f"{r['saliency_mib']:.0f} | {r['read_ms']:.2f} | {r['fuse_ms']:.2f} | "
              f"{r['ratio']:.2f} ({r['ratio_range'][0]:.2f}–{r['ratio_range'][1]:.2f}) | "
              f"{r['read_cpu_ms']:.2f} | {r['fuse_cpu_ms']:.2f} | "
              f"{r['cpu_ratio']:.2f} ({r['cpu_ratio_range'][0]:.2f}–{r['cpu_ratio_range'][1]:.2f}) | "
              f"{r['kernel_ms']:.2f} | {r['label_write_ms']:.2f} | {r['label_kib_per_image']:.1f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+",
                        default=["1000:64", "20000:64", "1000:224", "1000:224:computed", "1000:224:consensus"],
                        help="images:map_size, optionally :computed (no stored q99) and/or :consensus")
    parser.add_argument("--shard", type=int, default=256)
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--explainers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="read/fuse pairs per case")
    parser.add_argument("--out", type=Path, default=Path("results/bench_fuse.md"))
    args = parser.parse_args()
    kernel_load = kernel_load_seconds(args.models * args.explainers)
    with tempfile.TemporaryDirectory(prefix="bench_fuse_") as tmp:
        rows = []
        for case in args.cases:
            n, map_size, *options = case.split(":")
            if not set(options) <= {"computed", "consensus"}:
                parser.error(f"case {case!r}: expected images:map_size[:computed][:consensus]")
            rows.append(bench(int(n), int(map_size), set(options), args.shard, args.models, args.explainers,
                              args.workers, args.repeats, Path(tmp)))
            print(f"{case}: read {rows[-1]['read_ms']:.2f} ms/image, fuse {rows[-1]['fuse_ms']:.2f} ms/image, "
                  f"ratio {rows[-1]['ratio']:.2f}, CPU ratio {rows[-1]['cpu_ratio']:.2f}", flush=True)
    text = report(rows, args, kernel_load)
    write_result(text, args.out)


if __name__ == "__main__":
    main()
