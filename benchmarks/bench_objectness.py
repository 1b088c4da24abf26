"""The object model's cost on this CPU against its quality: seconds per image and development-set IoU per input size.

For each input size, the explain stage's own ObjectnessModel (ONNX Runtime, the threads one Ray worker
gets) runs on photos of the development set, each timed `--repeats` times (min / median / max over all
runs). Quality, when a store holds object maps made at these sizes (one object model per size, named
`<name><size>`): the mean foreground IoU of the object map alone at 0.5 against the hand-drawn masks.

    .venv/bin/python -m benchmarks.bench_objectness --sizes 1024 512 320 --images 4 --repeats 3
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np

from benchmarks.real_photos.devset import load_annotations
from benchmarks.result_file import write_result
from core.images import load_rgb
from core.schema import ObjectnessSection
from core.store import INDEX_PATH, OBJECTNESS, map_size, open_store, saliency_name
from pipeline import label_quality
from pipeline.explain.objectness import ObjectnessModel
from pipeline.maps.stored import StoredMaps


def seconds_per_image(size: int, photos: list[np.ndarray], repeats: int, threads: int) -> list[float]:
    model = ObjectnessModel({**ObjectnessSection().model_dump(), "input_size": size}, threads=threads)
    model.maps(photos[:1], 64)  # warm-up: ONNX Runtime plans its kernels for this size on the first run
    times = []
    for _ in range(repeats):
        for photo in photos:
            started = time.perf_counter()
            model.maps([photo], 224)
            times.append(time.perf_counter() - started)
    return times


def quality(store: Path, gt: Path, name: str) -> float | None:
    """Mean foreground IoU of the object map alone (>= 0.5) on the store's development photos, if it holds it."""
    group = open_store(store, mode="r")
    if saliency_name(name, OBJECTNESS) not in group:
        return None
    paths = [str(p) for p in group[INDEX_PATH][:]]
    truth = label_quality.load_ground_truth(gt, paths, map_size(group), "binary01")
    maps = StoredMaps(group, name, OBJECTNESS)
    counts = {PurePosixPath(paths[i]).name: label_quality.score_labels((maps[i] >= 0.5).astype(np.uint8), t)
              for i, t in truth.items()}
    return label_quality.summarise_scores(counts)["mean"]["iou_as_bg"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 512, 320])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (a Ray worker's num_cpus)")
    parser.add_argument("--store", type=Path, default=Path("runs/real_photos/pssl.zarr"))
    parser.add_argument("--gt", type=Path, default=Path("runs/real_photos/data/masks"))
    parser.add_argument("--name", default="isnet", help="object maps at size S are saliency/<name>S/objectness")
    parser.add_argument("--out", type=Path, default=Path("results/bench_objectness.md"))
    args = parser.parse_args(argv)
    photos = [load_rgb(a.photo, min_side=1) for a in load_annotations()[:args.images]]
    rows, seconds = [], {}
    for size in args.sizes:
        times = seconds_per_image(size, photos, args.repeats, args.threads)
        seconds[str(size)] = {"min": min(times), "median": statistics.median(times), "max": max(times)}
        iou = quality(args.store, args.gt, f"{args.name}{size}") if args.store.exists() else None
        rows.append(f"| {size} | {min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f} | "
                    f"{'–' if iou is None else f'{iou:.3f}'} |")
        print(rows[-1], flush=True)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    text = "\n".join([
        "# Object model (ISNet medium) cost against quality", "",
        f"Command: `.venv/bin/python -m benchmarks.bench_objectness {' '.join(sys.argv[1:] if argv is None else argv)}`"
        + f" ({len(photos)} development photos x {args.repeats} runs, {args.threads} ONNX Runtime thread(s); "
        f"load average at the end {load} on {os.cpu_count()} shared cores).", "",
        "| input size | seconds per image (min / median / max) | development set: object map alone, mean fg IoU |",
        "|---:|---|---:|", *rows])
    write_result(text, args.out, {"threads": args.threads, "cores": os.cpu_count(), "seconds_per_image": seconds})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
