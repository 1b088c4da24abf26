"""A picture of what the object map changes: per development photo, the photo, the object map, the labels
of two fuse settings side by side (made in memory by the fuse rule) and the hand-drawn mask, with IoUs.

    .venv/bin/python -m benchmarks.objectness_pictures --object-model isnet512 --out docs/img/objectness_devset.png
"""
from __future__ import annotations

import argparse
from pathlib import Path, PurePosixPath

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.config import get, load_config  # noqa: E402
from core.images import image_at_map_size  # noqa: E402
from core.store import FOREGROUND, INDEX_PATH, OBJECTNESS, map_size, open_store  # noqa: E402
from pipeline import label_quality  # noqa: E402
from pipeline.fuse.stage import fuse_rows, pipeline_config, plan_for  # noqa: E402
from pipeline.inspect.overlays import MASK_COLOURS, mask_codes  # noqa: E402
from pipeline.maps.stored import StoredMaps  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("runs/real_photos/pssl.zarr"))
    parser.add_argument("--gt", type=Path, default=Path("runs/real_photos/data/masks"))
    parser.add_argument("--config", default="conf/sample.yaml", help="its fuse: section is the 'with objects' labels")
    parser.add_argument("--object-model", default="isnet512")
    parser.add_argument("--out", type=Path, default=Path("docs/img/objectness_devset.png"))
    args = parser.parse_args(argv)
    group = open_store(args.store, mode="r")
    fuse = dict(get(load_config(args.config), "fuse"))
    with_objects = {**fuse, "objectness": {**(fuse.get("objectness") or {}), "model": args.object_model}}
    without = {**fuse, "combine": "none"}
    plans = {"consensus + CRF": plan_for(pipeline_config({"fuse": without}).fuse, group),
             f"{fuse['combine']}": plan_for(pipeline_config({"fuse": with_objects}).fuse, group)}
    paths = [str(p) for p in group[INDEX_PATH][:]]
    truth = label_quality.load_ground_truth(args.gt, paths, map_size(group), "binary01")
    objects = StoredMaps(group, args.object_model, OBJECTNESS)
    rows = sorted(truth)
    figure, axes = plt.subplots(len(rows), 5, figsize=(10, 2.1 * len(rows)), squeeze=False)
    for r, index in enumerate(rows):
        gt = truth[index]
        panels = [(PurePosixPath(paths[index]).name, image_at_map_size(group, index), {}),
                  (f"{args.object_model} objectness", objects[index].astype(np.float32),
                   {"cmap": "jet", "vmin": 0, "vmax": 1})]
        for name, plan in plans.items():
            mask = fuse_rows(group, plan, slice(index, index + 1))[0].mask
            counts = label_quality.score_labels(mask, gt)
            iou = counts["inter_as_bg"] / max(counts["union_as_bg"], 1)
            panels.append((f"{name}: IoU {iou:.2f}", mask_codes(mask), {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2}))
        panels.append(("hand-drawn mask", mask_codes(np.where(gt > 0, FOREGROUND, 0)),
                       {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2}))
        for axis, (title, picture, style) in zip(axes[r], panels):
            axis.imshow(picture, interpolation="nearest", **style)
            axis.set_title(title, fontsize=7)
            axis.axis("off")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=70)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
