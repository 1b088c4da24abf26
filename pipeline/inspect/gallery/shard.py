"""One shard of the gallery: its pictures, its images' rows, and the numbers the views sort by.

A shard is the unit of work (a Ray task for a large store, as in the other stages) and of resumption:
`build_shard` writes the label-on-photo thumbnail and the map sprite of each labelled image, the
shard's index rows for the image pages (`data/shard/<s>.js`), and last `build/<s>.npz`, the per-image
numbers; a shard whose npz exists is done, so a re-run only builds what was fused since.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.images import BadImage, load_rgb
from core.store import (CONSENSUS, FOREGROUND, INDEX_PATH, INDEX_STATUS, MASK, STATUS_OK, WEIGHT, WEIGHT_SCALE, data_root, fuse_settings,
                        fused_members, map_size, n_images, open_store, saliency_name, shard_size, shard_slice,
                        store_explainers)
from core.store_check import list_arrays
from pipeline.fuse.stage import fuse_rows, recorded_plan, stored_q99
from pipeline.fuse.rules import normalise
from pipeline.inspect.gallery.pictures import (colourise, fit, jpeg_bytes, label_on_photo, lookup_table, mask_panel, resized,
                                       sprite)
from pipeline.inspect.gallery.site import write_data
from pipeline.inspect.image_rows import index_rows
from pipeline.inspect.image_stats import label_shares
from pipeline.maps.stored import StoredMaps

OBJECTNESS = "objectness"  # the class-agnostic member's explainer name: saliency/<its name>/objectness
OBJECT_LEVEL = 0.5  # an objectness map's normalised value from which a pixel counts as object
STATS = ("fg_share", "ignore_share", "mean_weight", "disagreement", "objectness_iou")
LABEL_PANELS = ("photo", "consensus", "mask", "weight")


@dataclass(frozen=True)
class Settings:
    """What the pictures look like; a change rebuilds every shard (it is part of the fingerprint)."""
    thumb_side: int = 160  # longest side of a thumbnail, px
    panel: int = 112  # side of one panel on the image page, px; the sprite keeps maps smaller than this at their size
    thumb_quality: int = 82
    panel_quality: int = 85


def objectness_members(group) -> list[tuple[str, str]]:
    """(name, OBJECTNESS) for every class-agnostic objectness map in the store (none before it has one)."""
    return [(name.split("/")[1], OBJECTNESS) for name in list_arrays(group)
            if name.count("/") == 2 and name == saliency_name(name.split("/")[1], OBJECTNESS)]


def fingerprint(group, settings: Settings) -> str:
    """What a shard's products depend on besides its data: the fuse settings and the picture settings."""
    return json.dumps({"fuse": fuse_settings(group), "pictures": asdict(settings),
                       "objectness": objectness_members(group)}, sort_keys=True)


def layout(group) -> dict:
    """Where each panel sits in an image's sprite: one row per model (its explainers), objectness, then the label."""
    members = fused_members(group)
    explainers = [e for e in store_explainers(group) if any(e == me for _, me in members)] or [e for _, e in members]
    models = list(dict.fromkeys(m for m, _ in members))
    columns = max(len(explainers), len(LABEL_PANELS))
    panels = [{"caption": f"{model} / {explainer}", "row": models.index(model), "col": explainers.index(explainer),
               "kind": "map", "member": j} for j, (model, explainer) in enumerate(members)]
    row = len(models)
    for j, (name, explainer) in enumerate(objectness_members(group), start=len(members)):
        panels.append({"caption": f"{name} / {explainer}", "row": row, "col": 0, "kind": "map", "member": j})
        row += 1
    panels += [{"caption": caption, "row": row, "col": c, "kind": caption} for c, caption in enumerate(LABEL_PANELS)]
    return {"columns": columns, "rows": row + 1, "panels": panels}


def _photo(root: Path, path: str, side: int) -> np.ndarray | None:
    try:
        return load_rgb(root / path, min_side=1, draft=side)
    except BadImage:
        return None


def _objectness_iou(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """IoU of the object pixels (map >= OBJECT_LEVEL) with the label's foreground: low where shape and class disagree."""
    objects, foreground = maps >= OBJECT_LEVEL, mask == FOREGROUND
    union = (objects | foreground).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, (objects & foreground).sum(axis=(1, 2)) / union, np.nan)


def build_shard(store_path: str, out: str, shard: int, settings: Settings) -> dict[str, np.ndarray]:
    """Write the shard's pictures, rows and numbers (see the module docstring); returns the numbers."""
    group = open_store(store_path, mode="r")
    out = Path(out)
    n, k, size = n_images(group), shard_size(group), map_size(group)
    rows = shard_slice(shard, k, n)
    ok = np.asarray(group[INDEX_STATUS][rows]) == STATUS_OK
    mask, weight = np.asarray(group[MASK][rows]), np.asarray(group[WEIGHT][rows])
    members = fused_members(group)
    objectness = objectness_members(group)
    maps = [normalise(StoredMaps(group, m, e)[rows], stored_q99(group, [(m, e)], rows)[0])
            for m, e in members + objectness]
    member_maps = np.stack(maps[:len(members)])
    stats = np.full((rows.stop - rows.start, len(STATS)), np.nan, np.float32)
    stats[:, :3] = label_shares(mask, weight)
    stats[:, 3] = member_maps.std(axis=0).mean(axis=(1, 2))
    if objectness:
        stats[:, 4] = _objectness_iou(maps[len(members)], mask)
    stats[~ok] = np.nan
    _write_pictures(group, out, shard, rows, ok, mask, weight, maps, consensus(group, rows), settings, size)
    index = index_rows(group, rows)
    for row, values in zip(index, stats):
        row.update({key: None if np.isnan(v) else round(float(v), 4) for key, v in zip(STATS, values)})
    write_data(out, f"shard/{shard}", index)
    numbers = {"index": np.arange(rows.start, rows.stop), "stats": stats}
    (out / "build").mkdir(parents=True, exist_ok=True)
    partial = out / "build" / f"{shard}.partial.npz"
    np.savez(partial, **numbers)
    partial.replace(out / "build" / f"{shard}.npz")  # last: its presence says the shard is done
    return numbers


def consensus(group, rows: slice) -> np.ndarray:
    """float32 [B, S, S]: the shard's consensus, read when stored, else recomputed by the fuse rule the store records."""
    if CONSENSUS in group:
        return np.asarray(group[CONSENSUS][rows], np.float32)
    return np.stack([fused.consensus for fused in fuse_rows(group, recorded_plan(group), rows)])


def _write_pictures(group, out: Path, shard: int, rows: slice, ok: np.ndarray, mask: np.ndarray, weight: np.ndarray,
                    maps: list[np.ndarray], consensus_maps: np.ndarray, settings: Settings, size: int) -> None:
    """The panels are drawn at the map size and the sprite resized once (per-image costs are Pillow calls)."""
    table, grey_table = lookup_table(), lookup_table("gray")
    root, paths = Path(str(data_root(group) or "")), group[INDEX_PATH][rows]
    spec = layout(group)
    cells = {(cell["row"], cell["col"]): cell for cell in spec["panels"]}
    empty = np.full((size, size, 3), 64, np.uint8)
    for folder in ("thumbs", "grids"):
        (out / folder / str(shard)).mkdir(parents=True, exist_ok=True)
    for i in np.flatnonzero(ok):
        index = rows.start + int(i)
        photo = _photo(root, str(paths[i]), max(settings.thumb_side, settings.panel))
        if photo is None:  # unreadable since indexing: the label on grey
            photo = np.full((size, size, 3), 128, np.uint8)
        width, height = fit(photo.shape[1], photo.shape[0], settings.thumb_side)
        thumb = label_on_photo(resized(photo, width, height), mask[i])
        (out / "thumbs" / str(shard) / f"{index}.jpg").write_bytes(jpeg_bytes(thumb, settings.thumb_quality))
        label_panels = {"photo": resized(photo, size, size), "consensus": colourise(consensus_maps[i], table),
                        "mask": mask_panel(mask[i]), "weight": colourise(weight[i] / WEIGHT_SCALE, grey_table)}
        panels = []
        for r in range(spec["rows"]):
            for c in range(spec["columns"]):
                cell = cells.get((r, c))
                if cell is None:
                    panels.append(empty)
                else:
                    panels.append(colourise(maps[cell["member"]][i], table) if cell["kind"] == "map"
                                  else label_panels[cell["kind"]])
        grid = sprite(panels, spec["columns"])
        if size > settings.panel:  # smaller maps are kept as they are; the page scales them up pixel for pixel
            scale = settings.panel / size
            grid = resized(grid, round(grid.shape[1] * scale), round(grid.shape[0] * scale))
        (out / "grids" / str(shard) / f"{index}.jpg").write_bytes(jpeg_bytes(grid, settings.panel_quality))
