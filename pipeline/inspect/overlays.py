"""Pictures of the labels for a human eye: an overlay grid per image and a contact sheet of many.

Overlay grid: one row per model, one column per explainer (each member's map / its q99, capped at 1),
then a row with the photo, the consensus, the mask and the weight, and a colour bar, so fifteen members
read as a 3 x 5 table instead of a strip of twenty panels. Contact sheet: each label drawn on its photo
(foreground tinted and outlined, ignore hatched, background clear) at the photo's own aspect ratio, in
the colours of the gallery (pipeline/inspect/gallery/pictures.py). Images come from the dataset root recorded
in the store; a missing image file is drawn grey so the labels can still be seen.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from core.images import BadImage, image_at_map_size, load_rgb  # noqa: E402
from core.imagenet_classes import class_title  # noqa: E402
from core.store import (IGNORE, INDEX_PATH, INDEX_TARGET, MASK, OBJECTNESS, WEIGHT, WEIGHT_SCALE,  # noqa: E402
                        class_names, data_root, store_objectness)
from pipeline.fuse.stage import image_consensus, stored_q99  # noqa: E402
from pipeline.fuse.rules import normalise  # noqa: E402
from pipeline.inspect.gallery.pictures import MAP_COLOURS, fit, label_on_photo, resized  # noqa: E402
from pipeline.maps.stored import StoredMaps  # noqa: E402

# mask values background, foreground, ignore -> black, white, cyan (the gallery's ignore colour)
MASK_COLOURS = ListedColormap(["black", "white", "#00c8ff"])
PANEL_INCHES = 1.9
CONTACT_SIDE = 200  # px, the longest side of a photo on the contact sheet


def mask_codes(mask: np.ndarray) -> np.ndarray:
    """background/foreground/ignore (0/1/255) -> 0/1/2 for the three-colour map."""
    return np.where(mask == IGNORE, 2, mask).astype(np.uint8)


def _title(group, index: int) -> str:
    return f"[{index}] {group[INDEX_PATH][index]}: {class_title(class_names(group), int(group[INDEX_TARGET][index]))}"


def overlay_sheet(group, index: int, members: list[tuple[str, str]], out: Path) -> Path:
    """The overlay grid of one image (see the module docstring), as a PNG at `out`."""
    models = list(dict.fromkeys(m for m, _ in members))
    explainers = list(dict.fromkeys(e for _, e in members))
    columns = max(len(explainers), 4)
    figure, axes = plt.subplots(len(models) + 1, columns, squeeze=False,
                                figsize=(PANEL_INCHES * columns + 1.0, PANEL_INCHES * (len(models) + 1) + 0.5))
    for axis in axes.ravel():
        axis.axis("off")
    style = {"cmap": MAP_COLOURS, "vmin": 0, "vmax": 1, "interpolation": "nearest"}
    shown = None
    for model, explainer in members:
        stored = StoredMaps(group, model, explainer)[index][None]
        q99 = stored_q99(group, [(model, explainer)], slice(index, index + 1))[0]
        axis = axes[models.index(model), explainers.index(explainer)]
        shown = axis.imshow(normalise(stored, q99)[0], **style)
        axis.set_title(f"{model}\n{explainer}", fontsize=8)
    label_row = axes[len(models)]
    for axis, (title, picture, extra) in zip(label_row, (
            ("photo", image_at_map_size(group, index), {}),
            ("consensus", image_consensus(group, index), style),
            ("mask (cyan: ignore)", mask_codes(group[MASK][index]),
             {"cmap": MASK_COLOURS, "vmin": 0, "vmax": 2, "interpolation": "nearest"}),
            ("weight", group[WEIGHT][index] / WEIGHT_SCALE, {"cmap": "gray", "vmin": 0, "vmax": 1}),
            *_object_panel(group, index, style))):
        axis.imshow(picture, **extra)
        axis.set_title(title, fontsize=8, fontweight="bold")
    figure.suptitle(_title(group, index), fontsize=10)
    figure.tight_layout(rect=(0, 0, 0.9, 1))
    bar = figure.add_axes((0.915, 0.3, 0.012, 0.45))
    figure.colorbar(shown, cax=bar).set_label("map / its q99 (capped at 1)", fontsize=8)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def _photo(group, index: int) -> np.ndarray:
    try:
        rgb = load_rgb(Path(str(data_root(group) or "")) / str(group[INDEX_PATH][index]), min_side=1,
                       draft=CONTACT_SIDE)
    except BadImage:
        rgb = np.full((CONTACT_SIDE, CONTACT_SIDE, 3), 128, np.uint8)
    return resized(rgb, *fit(rgb.shape[1], rgb.shape[0], CONTACT_SIDE))


def contact_sheet(group, indices: list[int], out: Path, columns: int = 5) -> Path:
    """Each label on its photo with the image's index and target class (see the module docstring)."""
    rows = -(-len(indices) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.3 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    classes = class_names(group)
    for slot, index in enumerate(indices):
        axis = axes[divmod(slot, columns)]
        axis.imshow(label_on_photo(_photo(group, index), np.asarray(group[MASK][index])))
        axis.set_title(f"[{index}] {class_title(classes, int(group[INDEX_TARGET][index]))}", fontsize=8)
    figure.suptitle("labels on their photos: foreground tinted orange and outlined, ignore hatched cyan", fontsize=9)
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def _object_panel(group, index: int, style: dict) -> list:
    """The object map (explain.objectness) as one more panel of the label row, where the store has one."""
    name = store_objectness(group)
    if not name:
        return []
    return [(f"{name} {OBJECTNESS}", StoredMaps(group, name, OBJECTNESS)[index].astype(np.float32), style)]
