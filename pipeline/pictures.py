"""Pictures of the labels for a human eye: an overlay sheet per image and a contact sheet of many.

Overlay sheet: the image, each member's normalised map, the object map (where the store has one),
the consensus, the mask and the weight, in a row. Contact sheet: image above mask for many images. Images come from the dataset root recorded
in the store; a missing image file is drawn as a grey square so the labels can still be seen.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from core.images import image_at_map_size  # noqa: E402
from core.store import IGNORE, INDEX_PATH, MASK, OBJECTNESS, WEIGHT, WEIGHT_SCALE, store_objectness  # noqa: E402
from pipeline.fuse import image_consensus, stored_q99  # noqa: E402
from pipeline.fuse_rules import normalise  # noqa: E402
from pipeline.stored_maps import StoredMaps  # noqa: E402

# mask values background, foreground, ignore -> black, white, red
MASK_COLOURS = ListedColormap(["black", "white", "tab:red"])


def mask_codes(mask: np.ndarray) -> np.ndarray:
    """background/foreground/ignore (0/1/255) -> 0/1/2 for the three-colour map."""
    return np.where(mask == IGNORE, 2, mask).astype(np.uint8)


def overlay_sheet(group, index: int, members: list[tuple[str, str]], out: Path) -> Path:
    panels = [("image", image_at_map_size(group, index), {})]
    for model, explainer in members:
        stored = StoredMaps(group, model, explainer)[index][None]
        q99 = stored_q99(group, [(model, explainer)], slice(index, index + 1))[0]
        panels.append((f"{model}\n{explainer}", normalise(stored, q99)[0], {"cmap": "jet", "vmin": 0, "vmax": 1}))
    object_model = store_objectness(group)
    if object_model:
        panels.append((f"{object_model}\n{OBJECTNESS}", StoredMaps(group, object_model, OBJECTNESS)[index].astype(np.float32),
                       {"cmap": "jet", "vmin": 0, "vmax": 1}))
    panels.append(("consensus", image_consensus(group, index), {"cmap": "jet", "vmin": 0, "vmax": 1}))
    panels.append(("mask (red: ignore)", mask_codes(group[MASK][index]), {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2}))
    panels.append(("weight", group[WEIGHT][index] / WEIGHT_SCALE, {"cmap": "gray", "vmin": 0, "vmax": 1}))
    figure, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6))
    for axis, (title, picture, style) in zip(np.atleast_1d(axes), panels):
        axis.imshow(picture, interpolation="nearest", **style)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    figure.suptitle(f"[{index}] {group[INDEX_PATH][index]}", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def contact_sheet(group, indices: list[int], out: Path, columns: int = 8) -> Path:
    rows = -(-len(indices) // columns)
    figure, axes = plt.subplots(2 * rows, columns, figsize=(1.6 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for slot, index in enumerate(indices):
        r, c = divmod(slot, columns)
        axes[2 * r, c].imshow(image_at_map_size(group, index))
        axes[2 * r, c].set_title(str(index), fontsize=7)
        axes[2 * r + 1, c].imshow(mask_codes(group[MASK][index]), cmap=MASK_COLOURS, vmin=0, vmax=2,
                                  interpolation="nearest")
    figure.tight_layout()
    figure.savefig(out, dpi=80)
    plt.close(figure)
    return out
