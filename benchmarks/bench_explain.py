"""Explain-stage efficiency: pipeline images/s per explainer against the raw batched model work it needs.

For each explainer the pipeline (index -> classify -> explain on Ray, writing Zarr) runs alone over
the same images; its steady-state throughput (first shard finished -> last shard finished, so Ray and
model start-up are excluded) is compared with the raw cost of the model work it must do per image,
measured in this process with one torch thread (what each pipeline worker gets) at the best batch
size on the fastest runtime measured in the same run (forward: eager, channels_last or ONNX Runtime;
forward + backward: eager or channels_last), and multiplied by the number of workers (one per core): the work a perfectly parallel,
overhead-free pipeline would do. (Two torch threads in one process measured up to 25x slower here
whenever anything else ran on the other core.) With every class
known the pipeline makes one pass per image: 1 forward for the scores, then the explainer's work:
  grad_cam: 1 forward + backward;  smooth_grad: samples x (forward + backward);  lime: samples forwards.
Efficiency = pipeline images/s / raw images/s (1.0 = no overhead at all).

    .venv/bin/python -m benchmarks.bench_explain [--model efficientnet_lite0] [--out results/bench_explain.md]
"""
from __future__ import annotations

import argparse
import copy
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from benchmarks.result_file import write_result
from core.config import load_config
from pipeline import explain, index
from pipeline.classifiers import load_classifier
from pipeline.ray_runtime import ray_session
from pipeline.runtime import eager_forward, no_grad_forward
from pipeline.sample_data import SAMPLE_FILES, sample_path

WORK = {  # explainer -> (params, images to run, images per shard)
    "grad_cam": ({}, 96, 8),
    "smooth_grad": ({"samples": 16, "stdev": 0.15, "batch_size": 4}, 16, 2),
    "lime": ({"samples": 256, "segments": 50, "batch_size": 8}, 6, 1),
}


class Timeline(tqdm):
    """A silent progress bar that remembers when each shard finished."""

    def __init__(self):
        super().__init__(total=0, disable=True)
        self.events = []

    def update(self, n=1):
        self.events.append((time.perf_counter(), n, self.desc))
        return super().update(n)


def steady_rate(events: list, stage: str) -> float:
    stamps = [(t, n) for t, n, desc in events if desc.startswith(stage) and n > 0]
    if len(stamps) < 2:
        raise RuntimeError(f"need at least two finished shards in {stage} to time a steady state")
    return sum(n for _, n in stamps[1:]) / (stamps[-1][0] - stamps[0][0])


def write_images(folder: Path, count: int) -> Path:
    """Sample photos, cycled and mirrored, as one labelled class folder (class known: no ensemble needed)."""
    target = folder / "class_0"
    target.mkdir(parents=True, exist_ok=True)
    photos = [Image.open(sample_path(*entry)).convert("RGB") for entry in SAMPLE_FILES]
    for i in range(count):
        photo = photos[i % len(photos)]
        (photo if (i // len(photos)) % 2 == 0 else photo.transpose(Image.FLIP_LEFT_RIGHT)).save(target / f"{i:04d}.png")
    return folder


def raw_seconds_per_pass(forward, size: int, backward: bool, channels_last: bool = False, batches=(1, 4, 8, 16),
                         images_per_timing: int = 32, repeats: int = 3) -> tuple[float, int]:
    """Best seconds per image of one forward (+ input-gradient backward) over a few batch sizes.

    Each timing covers `images_per_timing` images and the best of `repeats` is kept, so a burst of
    other work on the machine inflates nothing but the discarded timings.
    """
    best = (float("inf"), 0)
    for batch in batches:
        images = torch.rand(batch, 3, size, size)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        steps = max(1, images_per_timing // batch)
        for _ in range(repeats):
            started = time.perf_counter()
            for _ in range(steps):
                if backward:
                    x = images.clone().requires_grad_(True)
                    forward(x)[:, 0].sum().backward()
                else:
                    forward(images)
            best = min(best, ((time.perf_counter() - started) / (steps * batch), batch))
    return best


def raw_costs(classifier, cache: Path) -> dict:
    """{(pass, runtime): (seconds per image, batch)} for every runtime that can run the pass."""
    net, size = classifier.net, classifier.input_size
    last = copy.deepcopy(net).to(memory_format=torch.channels_last)
    costs = {("forward", "eager"): raw_seconds_per_pass(eager_forward(net), size, False),
             ("forward", "channels_last"): raw_seconds_per_pass(eager_forward(last), size, False, True),
             ("backward", "eager"): raw_seconds_per_pass(net, size, True),
             ("backward", "channels_last"): raw_seconds_per_pass(last, size, True, True)}
    forward, name = no_grad_forward(classifier, "onnxruntime", cache, torch.device("cpu"))
    if name == "onnxruntime":
        costs[("forward", "onnxruntime")] = raw_seconds_per_pass(forward, size, False)
    return costs


def run_pipeline(config: dict, root: Path) -> list:
    path = root / "pssl.zarr"
    timeline = Timeline()
    index.run(config, path, timeline)
    explain.run(config, path, timeline)
    return timeline.events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--out", type=Path, default=Path("results/bench_explain.md"))
    args = parser.parse_args()
    base = load_config("conf/sample.yaml", [f"explain.models=[{args.model}]", "store.shard_size=1"])
    torch.set_num_threads(1)
    workers = os.cpu_count() or 1
    classifier = load_classifier(args.model)
    cache = Path(tempfile.mkdtemp())
    before = raw_costs(classifier, cache)
    rows = []
    with ray_session(base), tempfile.TemporaryDirectory() as scratch:
        for name, (params, count, shard) in WORK.items():
            config = copy.deepcopy(base)
            config["store"]["shard_size"] = shard
            config["data"] = {"source": "imagefolder", "root": str(write_images(Path(scratch) / name / "data", count))}
            config["explain"]["explainers"] = {name: params}
            events = run_pipeline(config, Path(scratch) / name)
            rows.append((name, count, steady_rate(events, "explain")))
    after = raw_costs(classifier, cache)  # measured on both sides of the pipelines; the best of each is kept
    costs = {key: min(before[key], after[key]) for key in before}
    shutil.rmtree(cache)
    # the bound: the fastest runtime measured here for each kind of pass, not eager
    (forward, forward_batch), forward_runtime = min((costs[k], k[1]) for k in costs if k[0] == "forward")
    (backward, backward_batch), backward_runtime = min((costs[k], k[1]) for k in costs if k[0] == "backward")
    raw_cost = {"grad_cam": backward, "smooth_grad": WORK["smooth_grad"][0]["samples"] * backward,
                "lime": WORK["lime"][0]["samples"] * forward}
    table = []
    for name, count, pipeline in rows:
        raw = workers / (forward + raw_cost[name])
        table.append((name, count, pipeline, raw, pipeline / raw))
    load = os.getloadavg()[0]
    lines = [f"# Explain-stage efficiency ({args.model}, {workers} workers x 1 thread, load average {load:.1f} at the end)", "",
             "Command: `.venv/bin/python -m benchmarks.bench_explain`", "",
             "Raw model cost per image on one thread at the best batch, by runtime (ms; the bound uses the "
             "fastest of each kind, measured before and after the pipelines, best kept):", "",
             "| pass | " + " | ".join(sorted({k[1] for k in costs})) + " |",
             "|---|" + "---:|" * len({k[1] for k in costs}),
             *[f"| {kind} | " + " | ".join(f"{costs[(kind, r)][0] * 1000:.1f} (batch {costs[(kind, r)][1]})"
                                          if (kind, r) in costs else "-" for r in sorted({k[1] for k in costs})) + " |"
               for kind in ("forward", "backward")], "",
             f"Bound: forward {forward * 1000:.1f} ms ({forward_runtime}, batch {forward_batch}), forward+backward "
             f"{backward * 1000:.1f} ms ({backward_runtime}, batch {backward_batch}); raw img/s = {workers} workers / cost.", "",
             "| explainer | images | pipeline img/s (scores + maps, Zarr written) | raw model img/s (1 forward + explainer's passes) | efficiency |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {n} | {c} | {p:.3f} | {r:.3f} | {e:.2f} |" for n, c, p, r, e in table]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
