"""The report's picture of held-out images: image | ground truth | consensus | PSSL mask, one row each."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from benchmarks.known_answer.labels import ImageSubset  # noqa: E402
from core.store import INDEX_PATH, MASK, map_size, open_store  # noqa: E402
from pipeline.fuse.stage import image_consensus  # noqa: E402
from pipeline.label_quality import load_ground_truth  # noqa: E402
from pipeline.inspect.overlays import MASK_COLOURS, image_at_map_size, mask_codes  # noqa: E402


def spread_indices(count: int, wanted: int) -> list[int]:
    """Evenly spaced rows, so a subset listed class by class shows several classes."""
    return sorted({int(i) for i in np.linspace(0, count - 1, min(wanted, count))})


def draw(store: Path, subset: ImageSubset, wanted: int, out: Path) -> Path:
    group = open_store(store, mode="r")
    paths = [str(p) for p in group[INDEX_PATH][:]]
    size = map_size(group)
    truth = load_ground_truth(subset.gt_dir, paths, size)
    rows = [i for i in spread_indices(len(paths), wanted) if i in truth]
    figure, axes = plt.subplots(len(rows), 4, figsize=(7.2, 1.9 * len(rows)), squeeze=False)
    for row, index in zip(axes, rows):
        panels = [(f"{paths[index]}", image_at_map_size(group, index), {}),
                  ("ground truth", (truth[index] > 0).astype(np.uint8), {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2}),
                  ("consensus", image_consensus(group, index), {"cmap": "jet", "vmin": 0, "vmax": 1}),
                  ("PSSL mask (cyan: ignore)", mask_codes(np.asarray(group[MASK][index])),
                   {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2})]
        for axis, (title, picture, style) in zip(row, panels):
            axis.imshow(picture, interpolation="nearest", **style)
            axis.set_title(title, fontsize=7)
            axis.axis("off")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
