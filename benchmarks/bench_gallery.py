"""The gallery at scale: time and bytes per image, the largest data file, and the driver's memory.

A synthetic store (benchmarks/synthetic_store.py: N images, tiny maps, no photo files, so each thumbnail
is the label on grey) is fused and its gallery built with `python -m pipeline gallery` on local Ray (as a
user runs it: start-up included), then again to time a re-run with nothing new. Photo decoding is not in these numbers (a 500x375 ImageNet JPEG in draft mode is a
few ms more per image, see docs/gallery.md).

    python -m benchmarks.bench_gallery --images 100000 --out results/gallery.md
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from benchmarks.result_file import write_result
from pipeline.fuse import stage as fuse
from pipeline.inspect.gallery.views import PAGE_SIZE
from benchmarks.synthetic_store import make_synthetic_store


def folder_bytes(folder: Path) -> dict[str, tuple[int, int]]:
    """{top-level part: (files, bytes)} of a built site."""
    parts: dict[str, list[int]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            part = path.relative_to(folder).parts[0] if len(path.relative_to(folder).parts) > 1 else "pages"
            if part == "data":
                part = "data/" + path.relative_to(folder / "data").parts[0]
            entry = parts.setdefault(part, [0, 0])
            entry[0] += 1
            entry[1] += path.stat().st_size
    return {k: (v[0], v[1]) for k, v in sorted(parts.items())}


SAMPLE_S = 0.5


def timed_cli(store: Path, site: Path, workers: int) -> tuple[dict, float, float]:
    """`python -m pipeline gallery STORE SITE --workers W` as a user runs it: (its summary, its peak RSS and the
    largest Ray worker's, in MiB)."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "gallery", str(store), str(site), "--workers",
                                str(workers)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    watched, peak, worker_peak = psutil.Process(process.pid), 0, 0
    while process.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak = max(peak, watched.memory_info().rss)
            for child in watched.children(recursive=True):
                with contextlib.suppress(psutil.Error):  # a process that ended meanwhile
                    if child.name().startswith("ray::") and not child.name().endswith("Agent"):
                        worker_peak = max(worker_peak, child.memory_info().rss)
        time.sleep(SAMPLE_S)
    output = process.stdout.read()
    if process.returncode:
        raise RuntimeError(f"gallery failed: {output}")
    built = re.search(r"gallery: (\d+) shards built, (\d+) kept, (\d+) labelled", output)
    return ({"seconds": time.perf_counter() - started, "shards_built": int(built.group(1)), "images": int(built.group(3))},
            peak / 2**20, worker_peak / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--map-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/gallery.md"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_gallery_"))
    try:
        store = work / "pssl.zarr"
        started = time.perf_counter()
        make_synthetic_store(store, args.images, map_size=args.map_size, shard=args.shard_size, bad=(3,))
        fuse.run({"fuse": {"fg_threshold": 0.5, "bg_threshold": 0.2}}, store)
        prepared = time.perf_counter() - started
        site = work / "site"
        first, first_mib, first_worker_mib = timed_cli(store, site, args.workers)
        again, again_mib, _ = timed_cli(store, site, args.workers)
        parts = folder_bytes(site)
        largest_data = max((p.stat().st_size, p) for p in (site / "data").rglob("*.js"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.images
    total_files, total_bytes = sum(f for f, _ in parts.values()), sum(b for _, b in parts.values())
    lines = [f"# Gallery of a synthetic {n}-image store",
             "", f"`python -m benchmarks.bench_gallery --images {n} --map-size {args.map_size} --shard-size "
                 f"{args.shard_size} --workers {args.workers}` (store made and fused in {prepared:.0f} s, not counted; load "
                 f"average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
             "", f"- build: {first['seconds']:.0f} s for {first['images']} labelled images on {args.workers} Ray workers: "
                 f"{1000 * first['seconds'] / n:.1f} ms per image",
             f"- re-run with nothing new: {again['seconds']:.1f} s ({again['shards_built']} shards built, views rewritten "
             "only where they changed)",
             f"- site: {total_files} files, {total_bytes / 2**20:.1f} MiB, {total_bytes / n / 1024:.2f} KiB per image",
             f"- largest data file: {largest_data[0] / 1024:.1f} KiB ({largest_data[1].relative_to(site)}); "
             f"pages hold {PAGE_SIZE} rows",
             f"- peak memory (RSS, sampled every {SAMPLE_S} s): the command {first_mib:.0f} MiB (re-run {again_mib:.0f} "
             f"MiB), the largest Ray worker {first_worker_mib:.0f} MiB", "", "| part | files | MiB | bytes per image |",
             "|---|---:|---:|---:|"]
    lines += [f"| {part} | {files} | {size / 2**20:.1f} | {size / n:.0f} |" for part, (files, size) in parts.items()]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
