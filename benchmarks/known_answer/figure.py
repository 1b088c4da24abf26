"""Draw a grid of generated examples from the files on disk, to see the world and check its masks.

Each classification example is shown twice: the image, and the image with everything outside its
ground-truth mask dimmed (a misaligned mask would show at once). The last row shows VOC-layout
segmentation images beside their palette label PNGs.

    .venv/bin/python -m benchmarks.known_answer.figure --config conf/known_answer.yaml --out docs/img/known_answer_examples.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.known_answer import layouts  # noqa: E402
from benchmarks.known_answer.generate import generate, world_categories  # noqa: E402
from core.config import load_config  # noqa: E402
from core.errors import run_cli  # noqa: E402
from core.schema import KnownAnswerConfig  # noqa: E402

DIM = 0.25  # brightness kept outside the mask in the overlay


def mask_overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    keep = np.where(mask[..., None] > 0, 1.0, DIM)
    return (image * keep).astype(np.uint8)


def draw(config: dict, out: Path, per_class: int) -> Path:
    root = generate(config)
    categories = world_categories(config)
    voc = layouts.voc_dir(root)
    seg_ids = (voc / "ImageSets" / "Segmentation" / "val.txt").read_text().split()[:per_class]
    rows, cols = len(categories) + 1, 2 * per_class
    figure, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.4 * rows))
    for row, category in enumerate(categories):
        for k in range(per_class):
            image_id = f"{category.name}_{k:05d}"
            image = np.asarray(Image.open(layouts.classification_image_path(root, "val", category.name, image_id)))
            mask = np.asarray(Image.open(layouts.classification_mask_path(root, "val", category.name, image_id)))
            axes[row, 2 * k].imshow(image)
            axes[row, 2 * k + 1].imshow(mask_overlay(image, mask))
        axes[row, 0].set_ylabel(category.name, fontsize=9)
    for k, image_id in enumerate(seg_ids):
        axes[-1, 2 * k].imshow(np.asarray(Image.open(voc / "JPEGImages" / f"{image_id}.jpg")))
        axes[-1, 2 * k + 1].imshow(Image.open(voc / "SegmentationClass" / f"{image_id}.png").convert("RGB"))
    axes[-1, 0].set_ylabel("VOC split", fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle("val images | mask (outside dimmed); last row: VOC image | SegmentationClass", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="conf/known_answer.yaml")
    parser.add_argument("--out", default="docs/img/known_answer_examples.png")
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args(argv)

    def command() -> None:
        print(draw(load_config(args.config, args.overrides, schema=KnownAnswerConfig).model_dump(), Path(args.out), args.per_class))

    return run_cli(command)  # a bad config: one line, exit 1


if __name__ == "__main__":
    sys.exit(main())
