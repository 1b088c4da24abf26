"""The ImageNet rehearsal: index, explain, fuse, verify and inspect at growing sizes, per image, on this machine.

A synthetic ImageNet train tree (the 1000 WordNet-id folders of core/imagenet_synsets.txt, the same number
of JPEGs in each, real photos cropped, mirrored, tinted and resized to ImageNet's common sizes) goes through
the real stages with the ImageNet layout (shards of 256, maps of 224): a tiny random-weight classifier
(tests.helpers.models:tiny_cnn, 1000 classes), Grad-CAM only, local Ray. Per size: seconds per image of each
stage, the driver's and the Ray workers' peak resident memory during it, and the store's files and bytes.
Per-image costs that stay flat from the smallest size to the largest mean nothing grows with the dataset.
At the largest size explain runs as a user runs it (`python -m pipeline explain`), is killed mid-way (once half
its shards are flagged) and run again: the second run must finish only the rest, and the stage's time there
is both runs'.

The default fuse rule's dense CRF costs the same per image at any size (benchmarks/bench_fuse.py times it);
here the rule is the fixed thresholds alone (fuse.refine=none), so fusing 100k images fits an afternoon.

    .venv/bin/python -m benchmarks.bench_scale [--sizes 1000 10000 100000] [--out results/bench_scale.md]
    .venv/bin/python -m benchmarks.bench_scale --alone {index,inspect,worker} --sizes N   # one stage, fresh process
"""
from __future__ import annotations

import argparse
import os
import resource
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
from core.store import (EXPLAIN_STAGE, FUSE_KEY, FUSE_STAGE, n_images, open_store, progress_name, shard_count,
                        shard_size)
from pipeline.explain import stage as explain
from pipeline.fuse import stage as fuse
from pipeline.index import stage as index
from pipeline.inspect import report as inspect_store
from pipeline.inspect import verify
from pipeline.explain.classifiers import model_specs
from pipeline.cli import config_context
from pipeline.explain.stage import ModelWorker
from pipeline.explain.runtime import RunOptions
from pipeline.cluster.session import ray_session
from pipeline.index.sample import SAMPLE_FILES, sample_path

WORK = Path("runs/bench_scale")
# (width, height) and how many of each per 10 images: most ImageNet photos are 500 px on the long side
SIZES = {(500, 375): 5, (500, 333): 2, (375, 500): 2, (640, 480): 1}
MODEL = "tiny"
SHARD = 256
OVERRIDES = [
    "data.source=imagefolder", f"store.shard_size={SHARD}", "store.map_size=224",
    f"explain.models=[{{arch: 'tests.helpers.models:tiny_cnn', name: {MODEL}, classes: 1000, input_size: 112}}]",
    "explain.explainers={grad_cam: {}}", "explain.batch_size=16", "explain.objectness=null", "fuse.refine=none",
    "fuse.crf=null", "fuse.combine=none",
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
    """Peak RSS of the driver (this process, or a `python -m pipeline` it runs) and of the largest Ray worker below
    it, per named phase."""

    def __init__(self):
        self.phase, self.peaks, self.stop = None, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        me = psutil.Process(os.getpid())
        while not self.stop.is_set():
            if self.phase is not None:
                try:
                    children = me.children(recursive=True)
                    workers = [p.memory_info().rss for p in children if p.name().startswith("ray::")]
                    drivers = [me.memory_info().rss] + [p.memory_info().rss for p in children
                                                        if "pipeline" in p.cmdline()[1:3]]  # a `python -m pipeline` run
                    sample = (max(drivers), max(workers, default=0))
                except psutil.Error:  # a process ended between listing and reading it
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


def run_size(n: int, sampler: MemorySampler, kill_mid_explain: bool = False) -> dict:
    """Every stage on a fresh n-image store. With `kill_mid_explain`, explain runs as a user runs it (`python -m
    pipeline explain`), is killed once half its shards are flagged and run again: its time is both runs'."""
    store, overrides = fresh_run(n, "store")
    config = load_config("conf/imagenet.yaml", overrides, schema=PipelineConfig, context=config_context)
    seconds, load_before, resumed = {}, os.getloadavg()[0], None

    def timed(stage, work):
        sampler.phase = f"{n}:{stage}"
        started = time.perf_counter()
        work()
        seconds[stage] = time.perf_counter() - started

    with ray_session(config):
        progress = Timeline()
        timed("index", lambda: index.run(config, store, progress))
        if not kill_mid_explain:
            timed("explain", lambda: explain.run(config, store, progress))
    if kill_mid_explain:
        config_file = store.parent / "bench_config.yaml"
        config_file.write_text(yaml.safe_dump(load_config("conf/imagenet.yaml", overrides)))
        resumed = {"n": n}
        timed("explain", lambda: resumed.update(kill_and_resume(store, config_file)))
    timed("fuse", lambda: fuse.run(config, store))
    timed("verify", lambda: verify.verify_store(store))
    timed("inspect", lambda: inspect_store.summarize(store))
    sampler.phase = None
    if resumed is not None:
        resumed["fused"] = int(np.asarray(open_store(store, mode="r")[progress_name(FUSE_STAGE, FUSE_KEY)][:]).sum())
        resumed["verify"] = verify.verify_store(store)
    files, size = store_files(store)
    return {"n": n, "seconds": seconds, "files": files, "bytes": size, "load": (load_before, os.getloadavg()[0]),
            "memory": {stage: sampler.peaks.get(f"{n}:{stage}", (0, 0)) for stage in STAGES}, "resumed": resumed}


def kill_and_resume(store: Path, config_file: Path) -> dict:
    """`python -m pipeline explain` on an indexed store, killed (its whole process group: driver, raylet,
    workers) once half its shards are flagged, then the same command again, which must finish only the rest."""
    command = [sys.executable, "-m", "pipeline", "explain", "--config", str(config_file)]
    group = open_store(store, mode="r")
    shards = shard_count(n_images(group), shard_size(group))
    flag = progress_name(EXPLAIN_STAGE, MODEL)
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    done_at_kill = 0
    while first.poll() is None:
        time.sleep(1)
        try:
            done_at_kill = int(np.asarray(open_store(store, mode="r")[flag][:]).sum())
        except (KeyError, FileNotFoundError):  # the stage has not made its flags yet
            continue
        if done_at_kill >= shards // 2:
            os.killpg(first.pid, signal.SIGKILL)
            break
    first.wait()
    second = subprocess.run(command, capture_output=True, text=True)
    return {"killed_with": done_at_kill, "shards": shards, "second_exit": second.returncode,
            "second_tail": (second.stdout + second.stderr).strip().splitlines()[-2:],
            "explained": int(np.asarray(open_store(store, mode="r")[flag][:]).sum())}


def alone(stage: str, n: int) -> str:
    """One stage in this fresh process on the n-image tree (index, into a new store) or store (inspect) that a
    run of the sizes left: its time and this process' peak RSS, without what earlier sizes left allocated."""
    if stage == "worker":
        return worker_memory(n, shards=min(80, shard_count(n, SHARD)))
    if stage == "index":
        store, overrides = fresh_run(n, "index_alone")
        config = load_config("conf/imagenet.yaml", overrides, schema=PipelineConfig, context=config_context)
        with ray_session(config):
            started = time.perf_counter()
            index.run(config, store, Timeline())
    else:
        started = time.perf_counter()
        inspect_store.summarize(WORK / f"store_{n}" / "pssl.zarr")
    seconds = time.perf_counter() - started
    return (f"{stage} alone at {n:,} images: {seconds:.1f} s, {1000 * seconds / n:.2f} ms / image, peak RSS "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def worker_memory(n: int, shards: int) -> str:
    """A model worker without Ray re-explaining the first `shards` shards of the n-image store: its RSS after
    every 10, to tell a per-shard leak from the two shards in flight that Ray's worker peaks include."""
    store = WORK / f"store_{n}" / "pssl.zarr"
    config = load_config("conf/imagenet.yaml", OVERRIDES + [f"run.store={store}"], schema=PipelineConfig,
                         context=config_context)
    worker = ModelWorker(str(store), {spec["name"]: spec for spec in model_specs(config.explain)},
                         dict(config.explain.explainers), config.explain.batch_size, 0, 1000, RunOptions())
    me, rss = psutil.Process(), []
    for shard in range(shards):
        worker.classify_and_explain(MODEL, shard)
        if shard % 10 == 9:
            rss.append(f"{me.memory_info().rss / 2**20:.0f}")
    return f"a model worker's RSS (MiB) after every 10 of {shards} shards at {n:,} images: {' '.join(rss)}"


def report(results: list[dict], command: str) -> str:
    resumed = next((r["resumed"] for r in results if r["resumed"]), None)
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
              "| files / shard | " + " | ".join(f"{r['files'] / shard_count(r['n'], SHARD):.1f}" for r in results) + " |",
              "| KB / image | " + " | ".join(f"{r['bytes'] / r['n'] / 1000:.1f}" for r in results) + " |"]
    if resumed:
        lines += ["", f"Killed and resumed at {resumed['n']:,} images: `python -m pipeline explain` was killed (SIGKILL to "
                  f"its process group) with {resumed['killed_with']} of {resumed['shards']} shards flagged; the same "
                  f"command again exited {resumed['second_exit']} with {resumed['explained']} / {resumed['shards']} "
                  f"explained (the explain row at {resumed['n']:,} is both runs), then {resumed['fused']} / "
                  f"{resumed['shards']} fused; `inspect --verify` problems: {len(resumed['verify'])}."
                  + (f" Its last lines: {' / '.join(resumed['second_tail'])}" if resumed["second_tail"] else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000],
                        help="dataset sizes, multiples of 1000 (one image per class per 1000)")
    parser.add_argument("--resume-at", type=int, default=None, help="the size whose explain is killed mid-way and "
                        "resumed (default: the largest; 0: none)")
    parser.add_argument("--out", type=Path, default=Path("results/bench_scale.md"))
    parser.add_argument("--alone", choices=["index", "inspect", "worker"], help="time this stage alone in this fresh process at "
                        "one --sizes value (after a full run made its tree and store); prints, writes nothing")
    args = parser.parse_args(argv)
    if args.alone:
        if len(args.sizes) != 1:
            parser.error("--alone takes one size: each size in its own process")
        print(alone(args.alone, args.sizes[0]))
        return 0
    if any(n % 1000 for n in args.sizes):
        parser.error("--sizes must be multiples of 1000 (the same number of images in each of 1000 classes)")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    resume_at = max(args.sizes) if args.resume_at is None else args.resume_at
    sampler = MemorySampler()
    try:
        results = [run_size(n, sampler, kill_mid_explain=n == resume_at) for n in sorted(args.sizes)]
    finally:
        sampler.close()
    command = " ".join([".venv/bin/python -m benchmarks.bench_scale", *(argv if argv is not None else sys.argv[1:])])
    write_result(report(results, command), args.out)
    resumed = [r["resumed"] for r in results if r["resumed"]]
    return 0 if all(r["second_exit"] == 0 and r["fused"] == r["shards"] for r in resumed) else 1


if __name__ == "__main__":
    raise SystemExit(main())
