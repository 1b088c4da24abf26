"""Bytes per image of a full store against its labels-only copy (store.keep_maps: false), and ImageNet's cost.

The labels-only store is the same store after the fuse stage has dropped its fused shards' maps
(pipeline/fuse/labels_only.py); its labels are checked to be unchanged. Bytes are every file on disk,
grouped by top-level folder, and the ImageNet line multiplies by its 1,281,167 training images.

    .venv/bin/python -m benchmarks.bench_labels_only runs/sample/pssl.zarr [--out results/labels_only.md]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.bench_store import bytes_by_group, member_bytes
from benchmarks.result_file import write_result
from core.store import MASK, OBJECTNESS, WEIGHT, fuse_settings, n_images, open_store, store_objectness
from pipeline.fuse import stage as fuse
from pipeline.plan import IMAGENET_TRAIN_IMAGES


def files_in(path: Path) -> int:
    return sum(1 for f in path.rglob("*") if f.is_file())


def metadata_bytes(path: Path) -> int:
    """Bytes of the zarr.json files: a fixed cost per array, not per image (they stay when the maps go)."""
    return sum(f.stat().st_size for f in path.rglob("zarr.json"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path, help="a fused store of a real generate-labels run (maps kept)")
    parser.add_argument("--out", type=Path, default=Path("results/labels_only.md"))
    args = parser.parse_args(argv)
    group = open_store(args.store, mode="r")
    n = n_images(group)
    members = [tuple(m) for m in fuse_settings(group)["members"]]
    objects = store_objectness(group)
    maps = member_bytes(args.store, members + ([(objects, OBJECTNESS)] if objects else []))
    models = {explainer: sum(e == explainer for _, e in members) or 1 for explainer in maps}
    with tempfile.TemporaryDirectory(dir=args.store.parent) as work:
        pruned = Path(work) / "pssl.zarr"
        shutil.copytree(args.store, pruned)
        config = {**group.attrs["config"]}
        config["store"] = {**config.get("store", {}), "keep_maps": False}
        fuse.run(config, pruned)
        same = all(np.array_equal(open_store(pruned, mode="r")[a][:], group[a][:]) for a in (MASK, WEIGHT))
        full, only = bytes_by_group(args.store), bytes_by_group(pruned)
        full_files, only_files = files_in(args.store), files_in(pruned)
        fixed_full, fixed_only = metadata_bytes(args.store), metadata_bytes(pruned)
    lines = [f"# Full store against labels-only (store.keep_maps: false): {n} images, {len(members)} members", "",
             f"Command: `.venv/bin/python -m benchmarks.bench_labels_only {args.store}`", "",
             "| part | full (KB / image) | labels-only (KB / image) |", "|---|---:|---:|"]
    for part in sorted(set(full) | set(only)):
        lines.append(f"| {part}/ | {full.get(part, 0) / n / 1000:.1f} | {only.get(part, 0) / n / 1000:.1f} |")
    total_full, total_only = sum(full.values()) / n / 1000, sum(only.values()) / n / 1000
    scale_full = (sum(full.values()) - fixed_full) / n / 1000
    scale_only = (sum(only.values()) - fixed_only) / n / 1000
    lines += [f"| **total** | **{total_full:.1f}** | **{total_only:.1f}** |",
              f"| of which array metadata (zarr.json, fixed per store) | {fixed_full / n / 1000:.1f} | "
              f"{fixed_only / n / 1000:.1f} |",
              f"| **per image at scale** (total less the metadata) | **{scale_full:.1f}** | **{scale_only:.1f}** |",
              f"| files | {full_files} | {only_files} |", "",
              f"ImageNet ({IMAGENET_TRAIN_IMAGES:,} images) at the per-image sizes: full "
              f"{scale_full * IMAGENET_TRAIN_IMAGES / 1e6:,.0f} GB, labels-only {scale_only * IMAGENET_TRAIN_IMAGES / 1e6:,.0f} GB.",
              f"Labels (mask and weight) of the labels-only store identical to the full store's: {'yes' if same else 'NO'}."]
    figures = {"images": n, "per_image_kb_at_scale": {"full": scale_full, "labels_only": scale_only},
               "map_kb_per_image_and_model": {e: b / n / 1000 / models[e] for e, b in maps.items()}}
    write_result("\n".join(lines), args.out, figures)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
