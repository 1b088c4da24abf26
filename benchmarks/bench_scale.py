"""The ImageNet rehearsal: index, explain, fuse, verify and inspect at growing sizes, per image, on this machine.

A synthetic ImageNet train tree (the 1000 WordNet-id folders of core/imagenet_synsets.txt, the same number
of JPEGs in each, real photos cropped, mirrored, tinted and resized to ImageNet's common sizes) goes through
the real stages with the ImageNet layout (shards of 256, maps of 224): a tiny random-weight classifier
(tests.helpers.models:tiny_cnn, 1000 classes), Grad-CAM only, local Ray. Per size: seconds per image of each
stage, the driver's and the Ray workers' peak resident memory during it, and the store's files and bytes.
Per-image costs that stay flat from the smallest size to the largest mean nothing grows with the dataset.
At the largest size `generate-labels` is also run as a user would, killed mid-explain (once half the
explain flags are set) and run again: the second run must finish only the rest.

The default fuse rule's dense CRF costs the same per image at any size (benchmarks/bench_fuse.py times it);
here the rule is the fixed thresholds alone (fuse.refine=none), so fusing 100k images fits an afternoon.

    .venv/bin/python -m benchmarks.bench_scale [--sizes 1000 10000 100000] [--out results/bench_scale.md]
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from PIL import Image, ImageOps

from benchmarks.bench_explain import Timeline
from benchmarks.result_file import write_result
from core.config import load_config
from core.imagenet_classes import imagenet_synsets
from core.schema import PipelineConfig
from core.store import EXPLAIN_STAGE, FUSE_KEY, FUSE_STAGE, open_store, progress_name
from pipeline import explain, fuse, index, inspect_store, verify
from pipeline.cli import config_context
from pipeline.ray_runtime import ray_session
from pipeline.sample_data import SAMPLE_FILES, sample_path

WORK = Path("runs/bench_scale")
# (width, height) and how many of each per 10 images: most ImageNet photos are 500 px on the long side
SIZES = {(500, 375): 5, (500, 333): 2, (375, 500): 2, (640, 480): 1}
MODEL = "tiny"
OVERRIDES = [
    "data.source=imagefolder", "store.shard_size=256", "store.map_size=224",
    f"explain.models=[{{arch: 'tests.helpers.models:tiny_cnn', name: {MODEL}, classes: 1000, input_size: 112}}]",
    "explain.explainers={grad_cam: {}}", "explain.batch_size=16", "fuse.refine=none", "fuse.crf=null",
]
STAGES = ("index", "explain", "fuse", "verify", "inspect")


def write_tree(root: Path, per_class: int) -> Path:
    """root/<wnid>/<wnid>_<i>.JPEG for every ImageNet class; kept between runs (a finished tree has its stamp)."""
    stamp = root / ".complete"
    if stamp.is_file():
        return root
    photos = [Image.open(sample_path(*entry)).convert("RGB") for entry in SAMPLE_FILES]
    sizes = [size for size, count in SIZES.items() for _ in range(count)]
    rng = np.random.default_rng(0)
    for c, wnid in enumerate(imagenet_synsets()):
        folder = root / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo = photos[(c + i) % len(photos)]
            w, h = photo.size
            box = rng.uniform(0, 0.25, 4) * [w, h, w, h]
            picture = photo.crop((box[0], box[1], w - box[2], h - box[3])).resize(sizes[(c * 7 + i) % len(sizes)])
            if (c + i) % 2:
                picture = ImageOps.mirror(picture)
            tint = np.clip(np.asarray(picture, np.float32) * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
            Image.fromarray(tint).save(folder / f"{wnid}_{i}.JPEG", quality=90)
    stamp.touch()
    return root


class MemorySampler:
    """Peak RSS of this process (the driver) and of the largest Ray worker below it, per named phase."""

    def __init__(self):
        self.phase, self.peaks, self.stop = None, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        me = psutil.Process(os.getpid())
        while not self.stop.is_set():
            if self.phase is not None:
                try:
                    workers = [p.memory_info().rss for p in me.children(recursive=True) if p.name().startswith("ray::")]
                    sample = (me.memory_info().rss, max(workers, default=0))
                except psutil.NoSuchProcess:
                    continue
                old = self.peaks.get(self.phase, (0, 0))
                self.peaks[self.phase] = (max(old[0], sample[0]), max(old[1], sample[1]))
            time.sleep(0.2)

    def close(self):
        self.stop.set()
        self.thread.join()


def store_files(path: Path) -> tuple[int, int]:
    files = [f for f in path.rglob("*") if f.is_file()]
    return len(files), sum(f.stat().st_size for f in files)


def fresh_run(n: int, folder: str) -> tuple[Path, list[str]]:
    """An empty store folder `folder_<n>` beside the n-image tree, and the overrides that point conf/imagenet.yaml
    at both on this CPU."""
    data = write_tree(WORK / f"data_{n}", n // 1000)
    store = WORK / f"{folder}_{n}" / "pssl.zarr"
    if store.parent.exists():
        shutil.rmtree(store.parent)
    store.parent.mkdir(parents=True)
    return store, OVERRIDES + [f"data.root={data}", f"run.store={store}", "ray.cpus_per_worker=1",
                               "ray.gpus_per_worker=0", "ray.object_store_memory=268435456"]


def run_size(n: int, sampler: MemorySampler) -> dict:
    store, overrides = fresh_run(n, "store")
    config = load_config("conf/imagenet.yaml", overrides, schema=PipelineConfig, context=config_context)
    seconds, load_before = {}, os.getloadavg()[0]

    def timed(stage, work):
        sampler.phase = f"{n}:{stage}"
        started = time.perf_counter()
        work()
        seconds[stage] = time.perf_counter() - started

    with ray_session(config):
        progress = Timeline()
        timed("index", lambda: index.run(config, store, progress))
        timed("explain", lambda: explain.run(config, store, progress))
    timed("fuse", lambda: fuse.run(config, store))
    timed("verify", lambda: verify.verify_store(store))
    timed("inspect", lambda: inspect_store.summarize(store))
    sampler.phase = None
    files, size = store_files(store)
    return {"n": n, "seconds": seconds, "files": files, "bytes": size, "load": (load_before, os.getloadavg()[0]),
            "memory": {stage: sampler.peaks.get(f"{n}:{stage}", (0, 0)) for stage in STAGES}}


def kill_and_resume(n: int) -> dict:
    """generate-labels as a user runs it, killed once half its explain flags are set, then run again."""
    store, overrides = fresh_run(n, "resume")
    config = load_config("conf/imagenet.yaml", overrides)
    config_file = store.parent / "bench_config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "pipeline", "generate-labels", "--config", str(config_file)]
    shards = -(-n // 256)
    flag = progress_name(EXPLAIN_STAGE, MODEL)
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    done_at_kill = 0
    while first.poll() is None:
        time.sleep(1)
        try:
            done_at_kill = int(np.asarray(open_store(store, mode="r")[flag][:]).sum())
        except Exception:  # noqa: BLE001 - the store or the flag is not there yet
            continue
        if done_at_kill >= shards // 2:
            os.killpg(first.pid, signal.SIGKILL)  # the whole run: driver, raylet, workers
            break
    first.wait()
    started = time.perf_counter()
    second = subprocess.run(command, capture_output=True, text=True)
    group = open_store(store, mode="r")
    return {"n": n, "killed_with": done_at_kill, "shards": shards, "second_exit": second.returncode,
            "second_seconds": time.perf_counter() - started, "second_tail": second.stdout.strip().splitlines()[-2:],
            "explained": int(np.asarray(group[flag][:]).sum()),
            "fused": int(np.asarray(group[progress_name(FUSE_STAGE, FUSE_KEY)][:]).sum()),
            "verify": verify.verify_store(store)}


def report(results: list[dict], resumed: dict | None, command: str) -> str:
    lines = ["# The ImageNet rehearsal: per-image cost of each stage at growing sizes", "",
             f"Command: `{command}`; this 2-core CPU, shared with other work (load average "
             f"{os.getloadavg()[0]:.1f} at the end); ImageNet layout (1000 WordNet-id folders, shards of 256, maps "
             "of 224), a tiny random-weight CNN (1000 classes, input 112), Grad-CAM only, fixed-threshold fuse.", "",
             "| stage | " + " | ".join(f"{r['n']:,} images (ms / image)" for r in results) + " | largest / smallest |",
             "|---|" + "---:|" * (len(results) + 1)]
    for stage in STAGES:
        per = [r["seconds"][stage] / r["n"] * 1000 for r in results]
        lines.append(f"| {stage} | " + " | ".join(f"{x:.2f}" for x in per) + f" | {per[-1] / per[0]:.2f}x |")
    lines.append("| load average before / after | " + " | ".join(f"{r['load'][0]:.1f} / {r['load'][1]:.1f}"
                                                             for r in results) + " | |")
    lines += ["", "| peak RSS (MiB): driver / largest Ray worker (sampled every 0.2 s) | "
              + " | ".join(f"{r['n']:,}" for r in results) + " |", "|---|" + "---:|" * len(results)]
    for stage in STAGES:
        lines.append(f"| {stage} | " + " | ".join(f"{r['memory'][stage][0] / 2**20:.0f} / "
                                                  f"{r['memory'][stage][1] / 2**20:.0f}" for r in results) + " |")
    lines += ["", "| store | " + " | ".join(f"{r['n']:,}" for r in results) + " |", "|---|" + "---:|" * len(results),
              "| files | " + " | ".join(f"{r['files']:,}" for r in results) + " |",
              "| files / shard | " + " | ".join(f"{r['files'] / -(-r['n'] // 256):.1f}" for r in results) + " |",
              "| KB / image | " + " | ".join(f"{r['bytes'] / r['n'] / 1000:.1f}" for r in results) + " |"]
    if resumed:
        lines += ["", f"Killed and resumed at {resumed['n']:,} images: `generate-labels` was killed (SIGKILL to its "
                  f"process group) with {resumed['killed_with']} of {resumed['shards']} explain shards flagged; "
                  f"the same command again exited {resumed['second_exit']} after {resumed['second_seconds']:.0f} s "
                  f"with {resumed['explained']} / {resumed['shards']} explained and {resumed['fused']} / "
                  f"{resumed['shards']} fused; `inspect --verify` problems: {len(resumed['verify'])}."
                  + (f" Its last lines: {' / '.join(resumed['second_tail'])}" if resumed["second_tail"] else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000],
                        help="dataset sizes, multiples of 1000 (one image per class per 1000)")
    parser.add_argument("--resume-at", type=int, default=None, help="size for the kill-and-resume run (default: "
                        "the largest; 0: none)")
    parser.add_argument("--out", type=Path, default=Path("results/bench_scale.md"))
    args = parser.parse_args(argv)
    if any(n % 1000 for n in args.sizes):
        parser.error("--sizes must be multiples of 1000 (the same number of images in each of 1000 classes)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sampler = MemorySampler()
    try:
        results = [run_size(n, sampler) for n in sorted(args.sizes)]
    finally:
        sampler.close()
    resume_at = max(args.sizes) if args.resume_at is None else args.resume_at
    resumed = kill_and_resume(resume_at) if resume_at else None
    command = " ".join([".venv/bin/python -m benchmarks.bench_scale", *(argv if argv is not None else sys.argv[1:])])
    write_result(report(results, resumed, command), args.out)
    ok = resumed is None or (resumed["second_exit"] == 0 and resumed["fused"] == resumed["shards"])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
