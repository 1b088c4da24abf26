"""Decode + resize per image on ImageNet-sized JPEGs: full decode against libjpeg's DCT-scaled decode.

The explain stage decodes each image and resizes it to the network's input (224 for EfficientNet-Lite0).
`explain.reduced_decode` asks PIL for a JPEG no smaller than the input on either side (`Image.draft`:
1/2, 1/4 or 1/8 scale), so a large photo is decoded and resized at a fraction of its pixels. The JPEGs are
real photos (scikit-image, scikit-learn, matplotlib) resized to a mix of ImageNet's common sizes
(SIZES: the mix is this benchmark's assumption; each size also has its own row). Timed: decode + resize
with the stage's own functions, one thread, best and spread of ROUNDS rounds. The labels' change:
the Grad-CAM of EfficientNet-Lite0 on both inputs, each fused alone with the default thresholds (no CRF),
label pixels that differ; and the largest input pixel difference.

    .venv/bin/python -m benchmarks.bench_decode [--out results/bench_decode.md]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.result_file import write_result
from core.images import load_rgb
from explainers import create_explainer
from pipeline.explain.classifiers import load_classifier
from pipeline.explain.stage import resize_batch
from pipeline.index.sample import SAMPLE_FILES, sample_path

# (width, height) and how many of each per 10 images: most ImageNet photos are 500 px on the long side
SIZES = {(500, 375): 4, (500, 333): 2, (375, 500): 1, (640, 480): 1, (1024, 768): 1, (2048, 1536): 1}
ROUNDS = 5
INPUT = 224
FG, BG = 0.3, 0.15


def write_jpegs(folder: Path) -> dict[tuple[int, int], list[Path]]:
    photos = [sample_path(*entry) for entry in SAMPLE_FILES if entry[2].endswith(".jpg")]
    photos += [sample_path(*entry) for entry in SAMPLE_FILES if entry[2] in ("chelsea.png", "coffee.png")]
    out: dict[tuple[int, int], list[Path]] = {}
    for size in SIZES:
        for i, photo in enumerate(photos):
            path = folder / f"{size[0]}x{size[1]}_{i}.jpg"
            Image.open(photo).convert("RGB").resize(size, Image.BICUBIC).save(path, quality=90)
            out.setdefault(size, []).append(path)
    return out


def decode_resize_ms(paths: list[Path], variants: dict[str, int | None]) -> dict[str, list[float]]:
    """ms per image of each round and variant (at_least of load_rgb): decode, then the stage's resize to the
    input; the variants alternate within each round, so the shared CPU's load falls on all alike."""
    rounds = {name: [] for name in variants}
    for _ in range(ROUNDS):
        for name, at_least in variants.items():
            started = time.perf_counter()
            for path in paths:
                resize_batch([load_rgb(path, min_side=1, draft=at_least)], INPUT, torch.device("cpu"))
            rounds[name].append((time.perf_counter() - started) / len(paths) * 1000)
    return rounds


def labels(cam, net, batch: torch.Tensor) -> np.ndarray:
    maps = cam.explain(net, batch, net(batch).argmax(1)).detach().relu().flatten(1)
    q99 = torch.quantile(maps, 0.99, dim=1, keepdim=True).clamp_min(1e-12)
    n = (maps / q99).clamp(max=1)
    return np.where(n >= FG, 1, np.where(n <= BG, 0, 255)).astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("results/bench_decode.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    classifier = load_classifier({"arch": "efficientnet_lite0", "name": "efficientnet_lite0"})
    cam = create_explainer("grad_cam", layer=classifier.cam_layer)
    variants = {"full decode": None, "no side below the input": INPUT, "no side below twice the input": 2 * INPUT}
    rows, mixed = [], {name: 0.0 for name in variants}
    with tempfile.TemporaryDirectory() as folder:
        jpegs = write_jpegs(Path(folder))
        for size, paths in jpegs.items():
            times = decode_resize_ms(paths, variants)
            inputs = {name: resize_batch([load_rgb(p, draft=v) for p in paths], INPUT, torch.device("cpu"))
                      for name, v in variants.items()}
            reference = labels(cam, classifier.net, inputs["full decode"])
            for name, at_least in variants.items():
                decoded = Image.open(paths[0])
                if at_least:
                    decoded.draft(None, (at_least, at_least))
                changed = float((labels(cam, classifier.net, inputs[name]) != reference).mean())
                pixel = float((inputs[name] - inputs["full decode"]).abs().max())
                rows.append((size, name, decoded.size, times[name], min(times["full decode"]), pixel, changed))
                mixed[name] += SIZES[size] / sum(SIZES.values()) * min(times[name])
    lines = [f"# Decode + resize per image to {INPUT}x{INPUT}: full JPEG decode against DCT-scaled decode "
             "(explain.reduced_decode)", "", "Command: `.venv/bin/python -m benchmarks.bench_decode`; one thread, "
             f"{ROUNDS} rounds over {len(next(iter(jpegs.values())))} photos per size, the variants alternating "
             "within each round (best, and the spread of the rounds).",
             "", "| JPEG size | decode | decoded at | ms / image | speed-up | max input change | "
             "Grad-CAM label pixels changed |", "|---|---|---|---:|---:|---:|---:|"]
    for size, name, decoded, rounds, full_ms, pixel, changed in rows:
        lines.append(f"| {size[0]}x{size[1]} | {name} | {decoded[0]}x{decoded[1]} | {min(rounds):.2f} "
                     f"({min(rounds):.2f}-{max(rounds):.2f}) | {full_ms / min(rounds):.2f}x | {pixel:.3f} | "
                     f"{changed:.2e} |")
    lines += ["", f"ImageNet-like mix ({', '.join(f'{k}x {v[0]}x{v[1]}' for v, k in SIZES.items())} per 10), ms per "
              "image: " + ", ".join(f"{name} **{ms:.2f}**" for name, ms in mixed.items()) + ".",
              "Only JPEGs at least twice the requested side on their short side are decoded smaller; the others "
              "are decoded exactly as before (input change 0)."]
    write_result("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
