"""Write the known-answer world to disk: ImageFolder splits with their masks, and a VOC + Aug split.

Every image draws from its own random generator seeded by (seed, split, category, index), so an
image does not depend on how many others are made, and the same config gives byte-identical files.
A finished run writes world.json (config, its hash, class names) last; a second run with the same
config finds it and does nothing.

    .venv/bin/python -m benchmarks.known_answer.generate --config conf/known_answer.yaml [key=value ...]
"""
from __future__ import annotations

import argparse
import sys
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.known_answer import layouts
from benchmarks.known_answer.categories import CATEGORIES, Category
from benchmarks.known_answer.scene import finish, render, sample_scene
from core.config import ConfigError, load_config
from core.errors import run_cli
from core.schema import KnownAnswerConfig

MANIFEST = "world.json"
SPLIT_CODES = {"train": 0, "val": 1, "seg_train": 2, "seg_val": 3, "seg_aug": 4}
DATA_KEYS = ("seed", "classes", "world", "classification", "segmentation")


def config_hash(config: dict, keys: tuple[str, ...] = DATA_KEYS) -> str:
    """Hash of the parts of the config that change the outputs (not where they are written)."""
    text = json.dumps({key: config.get(key) for key in keys}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def world_categories(config: dict) -> list[Category]:
    """The configured categories in ImageFolder (sorted) order; label k + 1 is the k-th of them."""
    by_name = {category.name: category for category in CATEGORIES}
    names = config.get("classes") or sorted(by_name)
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ConfigError(f"classes: unknown categories {unknown}; the world has {sorted(by_name)}")
    if len(set(names)) < 2:
        raise ConfigError(f"classes: need at least two distinct categories, got {names}")
    return [by_name[name] for name in sorted(set(names))]


def make_image(config: dict, objects: dict[int, Category], size: int,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One scene rendered to (uint8 RGB, uint8 label map)."""
    world = config["world"]
    rgb, labels = render(sample_scene(rng, objects, size, world))
    return finish(rgb, rng, world["noise_std"]), labels


def generate_classification(config: dict, root: Path, categories: list[Category]) -> dict[str, int]:
    size = int(config["classification"]["image_size"])
    counts = {}
    for split, per_class in config["classification"]["per_class"].items():
        if split not in ("train", "val"):
            raise ConfigError(f"classification.per_class: unknown split {split!r} (use train, val)")
        for category in categories:
            global_index = CATEGORIES.index(category)
            for i in range(int(per_class)):
                rng = np.random.default_rng([config["seed"], SPLIT_CODES[split], global_index, i])
                image, labels = make_image(config, {1: category}, size, rng)
                layouts.write_classification(root, split, category.name, f"{category.name}_{i:05d}", image, labels)
        counts[split] = int(per_class) * len(categories)
    return counts


def generate_segmentation(config: dict, root: Path, categories: list[Category]) -> dict[str, int]:
    seg = config["segmentation"]
    size, low_high = int(seg["image_size"]), seg["classes_per_image"]
    lists: dict[str, list[str]] = {"train": [], "val": [], "aug": []}
    for split, count in seg["images"].items():
        name = {"train": "train", "val": "val", "aug_extra": "aug"}.get(split)
        if name is None:
            raise ConfigError(f"segmentation.images: unknown split {split!r} (use train, val, aug_extra)")
        for i in range(int(count)):
            rng = np.random.default_rng([config["seed"], SPLIT_CODES[f"seg_{name}"], i])
            k = int(rng.integers(low_high[0], min(low_high[1], len(categories)) + 1))
            chosen = sorted(rng.choice(len(categories), size=k, replace=False))
            image, labels = make_image(config, {int(c) + 1: categories[c] for c in chosen}, size, rng)
            image_id = f"{name}_{i:06d}"
            layouts.write_voc_image(root, image_id, image, labels, in_voc=name != "aug",
                                    ignore_border=int(seg["ignore_border"]), jpeg_quality=int(seg["jpeg_quality"]))
            lists[name].append(image_id)
    layouts.write_voc_lists(root, {
        "train": lists["train"], "val": lists["val"], "trainval": lists["train"] + lists["val"],
        "train_aug": lists["train"] + lists["aug"], "aug": lists["aug"],
    })
    return {name: len(ids) for name, ids in lists.items()}


def generate(config: dict) -> Path:
    """Write the world under config['root'] unless a finished run of the same config is there."""
    root = Path(config["root"])
    digest = config_hash(config)
    manifest_path = root / MANIFEST
    if manifest_path.is_file():
        existing = json.loads(manifest_path.read_text())
        if existing["config_hash"] == digest:
            return root
        raise ConfigError(f"{root} holds a world from another config (hash {existing['config_hash']}, "
                          f"this one {digest}); delete it or set root=<another folder>")
    categories = world_categories(config)
    started = time.perf_counter()
    counts = {"classification": generate_classification(config, root, categories),
              "segmentation": generate_segmentation(config, root, categories)}
    manifest = {
        "config_hash": digest, "config": {key: config.get(key) for key in DATA_KEYS},
        "class_names": [category.name for category in categories],
        "voc_class_ids": {category.name: k + 1 for k, category in enumerate(categories)},
        "counts": counts,
        "layout": {"imagefolder": "classification/<split>/<class>/<id>.png",
                   "masks": "classification_masks/<split>/<class>/<id>.png (0 background, 1 object)",
                   "voc": "VOCdevkit/VOC2012"},
    }
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"known-answer world: {counts} under {root} in {time.perf_counter() - started:.0f} s")
    return root


def world_command(argv: list[str] | None, description: str, work, example: str) -> int:
    """The known-answer tools' command line: `--config` (conf/known_answer.yaml) and key=value overrides, validated
    against KnownAnswerConfig, handed to `work(config dict)`; a bad config or input is one line and exit 1."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", default="conf/known_answer.yaml")
    parser.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {example}")
    args = parser.parse_args(argv)
    return run_cli(lambda: work(load_config(args.config, args.overrides, schema=KnownAnswerConfig).model_dump()))


def main(argv: list[str] | None = None) -> int:
    return world_command(argv, __doc__.split("\n\n")[0], generate, "classification.image_size=64")


if __name__ == "__main__":
    sys.exit(main())
