"""Training throughput with the real data path against the same model fed pre-made tensors.

Run: .venv/bin/python -m benchmarks.bench_train [--config conf/pretrain_sample.yaml] [--images 64]
     [--steps 12] [--out results/bench_train.md] [key=value ...]

A labelled store is built first (not timed): `--images` JPEGs of ImageNet's typical size (500x375)
indexed in a store, synthetic explanations (benchmarks.synthetic_store) fused by the real fuse stage.
Then one model, loss and optimiser (from the config) take `--steps` steps of each feed, alternating
step by step: (a) the real data path — store + image decode + joint augmentations through a
DataLoader with the configured workers — and (b) batches made beforehand by the same dataset (same
shapes, no loading). ratio = (a)'s images/s / (b)'s; the target is >= 0.9. Alternating single
steps spreads the varying load of other jobs on this shared machine evenly over both feeds.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from benchmarks.result_file import write_result
from core.config import get, load_config
from core.store import INDEX_HEIGHT, INDEX_PATH, INDEX_WIDTH, open_store
from pipeline.fuse import stage as fuse
from benchmarks.synthetic_store import make_synthetic_store
from training.datasets import PsslStoreDataset
from training.datasets.sampler import ResumableSampler
from training.datasets.transforms import build_transforms
from training.loss import SegmentationLoss
from training.models import create_model
from training.trainer import param_groups

IMAGE_SIZE = (375, 500)  # height, width: ImageNet's most common size


def build_store(root: Path, n: int) -> Path:
    """Images on disk, a store indexing them, and labels from the real fuse stage."""
    store = root / "bench.zarr"
    make_synthetic_store(store, n, map_size=224, shard=32)
    group = open_store(store)
    images = root / "images"
    rng = np.random.default_rng(0)
    for path in group[INDEX_PATH][:]:
        target = images / str(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (*IMAGE_SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(target, format="JPEG", quality=90)
    group.attrs["data_root"] = str(images)
    group[INDEX_HEIGHT][:] = np.full(n, IMAGE_SIZE[0], np.int32)
    group[INDEX_WIDTH][:] = np.full(n, IMAGE_SIZE[1], np.int32)
    fuse.run({"fuse": {"refine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": 2}}, store)
    return store


class Stepper:
    """One SGD step of the configured model and loss on a batch; returns the images it consumed."""

    def __init__(self, config: dict):
        num_classes, ignore = int(get(config, "num_classes")), int(get(config, "ignore_index"))
        torch.manual_seed(0)
        self.model = create_model(get(config, "model.name"), num_classes).train()
        self.loss = SegmentationLoss(num_classes, background_index=num_classes - 1,
                                     background_alpha=float(get(config, "loss.background_alpha")),
                                     detail_weight=float(get(config, "loss.detail_weight")), ignore_index=ignore)
        train = get(config, "train")
        self.optimizer = torch.optim.SGD(param_groups(self.model, train["lr"], train["backbone_lr_mult"]),
                                         lr=train["lr"], momentum=train["momentum"],
                                         weight_decay=train["weight_decay"])

    def __call__(self, batch: dict) -> int:
        total, _ = self.loss(self.model(batch["image"]), batch["label"], batch["weight"])
        total.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return len(batch["image"])


def bench(config: dict, store: Path, steps: int) -> dict:
    num_classes, ignore = int(get(config, "num_classes")), int(get(config, "ignore_index"))
    train = get(config, "train")
    dataset = PsslStoreDataset(store, num_classes, ignore, build_transforms(get(config, "augment"), ignore),
                               seed=train["seed"])
    sampler = ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True)
    loader = DataLoader(dataset, batch_size=train["batch_size"], sampler=sampler, num_workers=train["workers"],
                        drop_last=True)
    if len(dataset) < (steps + 1) * train["batch_size"]:
        raise SystemExit(f"--images must be at least {(steps + 1) * train['batch_size']} for {steps} steps")
    premade = [batch for batch, _ in zip(DataLoader(dataset, batch_size=train["batch_size"]), range(4))]
    stepper = Stepper(config)
    real_batches = iter(loader)
    stepper(next(real_batches))  # warm-up: workers started, first allocations done
    stepper(premade[0])
    seconds = {"real": 0.0, "premade": 0.0}
    images = {"real": 0, "premade": 0}
    for step in range(steps):
        for feed in ("premade", "real"):
            started = time.perf_counter()  # the real feed's wait for its batch is part of its time
            batch = next(real_batches) if feed == "real" else premade[step % len(premade)]
            images[feed] += stepper(batch)
            seconds[feed] += time.perf_counter() - started
    real_ips, premade_ips = images["real"] / seconds["real"], images["premade"] / seconds["premade"]
    return {"real_ips": real_ips, "premade_ips": premade_ips, "real_s": seconds["real"],
            "premade_s": seconds["premade"], "steps": steps, "ratio": real_ips / premade_ips}


def report(result: dict, config: dict, args: argparse.Namespace) -> str:
    train, augment = get(config, "train"), get(config, "augment")
    overrides = " ".join(args.overrides)
    return "\n".join([
        "# Training throughput: real data path vs pre-made tensors",
        "",
        f"Command: `.venv/bin/python -m benchmarks.bench_train --config {args.config} --images {args.images} "
        f"--steps {args.steps}{' ' + overrides if overrides else ''}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU. Model {get(config, 'model.name')} "
        f"({get(config, 'num_classes')} classes), batch {train['batch_size']}, {train['workers']} DataLoader "
        f"worker(s); images {IMAGE_SIZE[1]}x{IMAGE_SIZE[0]} JPEG, resize-by-short {augment['resize_by_short']}, "
        f"scale {augment['scale']}, crop {augment['crop']}, flip, colour distortion.",
        "",
        "| feed | steps | seconds | images/s |",
        "|---|---|---|---|",
        f"| real data path (store + decode + augment, DataLoader) | {result['steps']} | {result['real_s']:.1f} | "
        f"{result['real_ips']:.2f} |",
        f"| pre-made tensors | {result['steps']} | {result['premade_s']:.1f} | {result['premade_ips']:.2f} |",
        "",
        f"ratio (real / pre-made) = **{result['ratio']:.3f}** (target >= 0.9)",
        "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="conf/pretrain_sample.yaml")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--out", type=Path, default=Path("results/bench_train.md"))
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        store = build_store(Path(tmp), args.images)
        result = bench(config, store, args.steps)
    text = report(result, config, args)
    write_result(text, args.out)


if __name__ == "__main__":
    main()
