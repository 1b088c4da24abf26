"""This project's store to and from the released PSSL label format (core.released_format), both ways.

PaddleSeg's `PSSLDataset` reads `arr_0 == 1` as the image's class and every other value as
background, so the ignore band (255) of this project's mask cannot stay ignore there; `ignore_as`
says what the export writes for it:
  `255` (default): PaddleSeg reads it as background, `load_released_label` reads it back as ignore;
  `background`: 0, the same for PaddleSeg, and no longer distinguishable here;
  `foreground`: 1, the uncertain band counts as the object.
PaddleSeg takes the class from the `<wnid>_` prefix of the image's file name and reads the image
from `imagenet_root/` + the line up to `.JPEG`. Images it could not resolve (a name without the
prefix or `.JPEG`, or a file not at `train/<wnid>/` under one common root, as in the sample) stop the
export with one line, unless `write_images`: then every image is written (JPEG, EXIF orientation
applied, so it matches the label's size) under `OUT/images/train/<wnid>/`, renamed
`<wnid>_<row>.JPEG` where needed, and `OUT/images` is PaddleSeg's `imagenet_root`.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from core.images import load_rgb
from core.released_format import SUFFIX, SYNSETS, TRAIN_LIST, label_path, load_released_label
from core.store import (BACKGROUND, CLASS_FROM_WNID, CLASS_UNKNOWN, FOREGROUND, FUSE_KEY, FUSE_STAGE, IGNORE,
                        INDEX_CLASS_ID, INDEX_CLASS_SOURCE, INDEX_ERROR, INDEX_HEIGHT, INDEX_KEY, INDEX_PATH,
                        INDEX_STAGE, INDEX_STATUS, INDEX_TARGET, INDEX_WIDTH, MASK, STATUS_BAD, STATUS_OK, UNKNOWN_CLASS,
                        WEIGHT, WEIGHT_SCALE, StoreError, class_names, create_index_arrays, create_store, done_shards,
                        labelled_images, mark_done, n_images, open_store, progress_name, require_array, shard_count,
                        shard_slice, write_layout)
from core.store import data_root as stored_data_root
from core.store import shard_size as stored_shard_size


IGNORE_AS = {"255": IGNORE, "background": BACKGROUND, "foreground": FOREGROUND}
DEFAULT_IGNORE_AS = "255"
IGNORE_AS_MEANING = {"255": "PaddleSeg reads it as background, this project's import reads it back as ignore",
                     "background": "0, background for PaddleSeg and for this project",
                     "foreground": "1, the image's class for PaddleSeg and for this project"}
IMAGES_DIR = "images"


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))


def resolvable_name(name: str, wnid: str) -> bool:
    """PaddleSeg cuts the line at the first `.JPEG` and takes the class from the text before the first `_`."""
    return name.endswith(".JPEG") and name.count(".JPEG") == 1 and name.split("_")[0] == wnid


def image_root_of(image: Path, wnid: str) -> Path | None:
    """The `imagenet_root` under which PaddleSeg finds `image` as train/<wnid>/<name>, if there is one."""
    return image.parents[2] if image.parent.name == wnid and image.parent.parent.name == "train" else None


class ExportError(StoreError):
    """The store cannot be exported as asked (names PaddleSeg cannot resolve, a bad option)."""


class ExportPlan:
    """Where each labelled row goes: its train.txt line, its image and PaddleSeg's `imagenet_root`."""

    def __init__(self, group, out: Path, write_images: bool):
        classes = class_names(group)
        root_dir = Path(stored_data_root(group) or ".")
        paths, targets = group[INDEX_PATH][:], np.asarray(group[INDEX_TARGET][:])
        self.lines: dict[int, str] = {}
        self.sources: dict[int, Path] = {}
        roots, unresolved = set(), []
        for i in np.flatnonzero(labelled_images(group)):
            path = str(paths[i])
            wnid = classes[targets[i]] if classes and targets[i] >= 0 else PurePosixPath(path).parent.name
            name, source = PurePosixPath(path).name, root_dir / path
            root = image_root_of(source, wnid)
            if not resolvable_name(name, wnid) or root is None:
                unresolved.append(path)
                name = name if resolvable_name(name, wnid) else f"{wnid}_{i}.JPEG"
            roots.add(root)
            self.lines[int(i)] = label_path(name, wnid)
            self.sources[int(i)] = source
        if not write_images and (unresolved or len(roots) > 1):
            example = unresolved[0] if unresolved else sorted(map(str, roots))[1]
            raise ExportError(f"{len(unresolved) or len(self.lines)} image paths PaddleSeg cannot resolve (it needs "
                              f"<root>/train/<wnid>/<wnid>_*.JPEG), e.g. {example}; pass --write-images to write "
                              f"renamed copies under {out / IMAGES_DIR}")
        self.imagenet_root = out / IMAGES_DIR if write_images else next(iter(roots), None)
        seen: dict[str, int] = {}
        for i, line in self.lines.items():
            if line in seen:
                raise ExportError(f"images {seen[line]} and {i} would both be exported as {line}")
            seen[line] = i


def export_store(store_path: str | Path, out_dir: str | Path, ignore_as: str = DEFAULT_IGNORE_AS,
                 write_images: bool = False) -> ExportPlan:
    """Write every fused image with status ok as a released-format label; return the plan (lines, root).

    The mask is resized (nearest) from the map size back to the image's own size. The wnid folder is
    the target class's WordNet id when the store lists its classes, else the image's parent folder.
    """
    if ignore_as not in IGNORE_AS:
        raise ExportError(f"ignore_as must be one of {', '.join(IGNORE_AS)}, not {ignore_as!r}")
    group = open_store(store_path, mode="r")
    if MASK not in group or progress_name(FUSE_STAGE, FUSE_KEY) not in group:
        raise StoreError(f"{store_path} has no labels to export (run the fuse stage first)")
    out = Path(out_dir)
    plan = ExportPlan(group, out, write_images)
    n, k = n_images(group), stored_shard_size(group)
    classes = class_names(group)
    heights, widths = np.asarray(group[INDEX_HEIGHT][:]), np.asarray(group[INDEX_WIDTH][:])
    for shard in range(shard_count(n, k)):
        rows = shard_slice(shard, k, n)
        chosen = [i for i in range(rows.start, rows.stop) if i in plan.lines]
        if not chosen:
            continue
        masks = group[MASK][rows]
        for i in chosen:
            line = plan.lines[i]
            (out / line).parent.mkdir(parents=True, exist_ok=True)
            mask = _resize_nearest(masks[i - rows.start], int(heights[i]), int(widths[i]))
            np.savez_compressed(out / line, np.where(mask == IGNORE, IGNORE_AS[ignore_as], mask).astype(np.uint8))
            if write_images:
                image = plan.imagenet_root / line.removesuffix(SUFFIX)
                image.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(load_rgb(plan.sources[i])).save(image, format="JPEG", quality=95)
    (out / TRAIN_LIST).write_text("".join(f"{line}\n" for line in plan.lines.values()))
    if classes:
        (out / SYNSETS).write_text("".join(f"{wnid}\n" for wnid in classes))
    return plan


def import_released(root: str | Path, store_path: str | Path, imagenet_root: str | Path | None = None,
                    map_size: int = 224, shard_size: int = 256, limit: int | None = None) -> dict:
    """Build a store whose labels are the released PSSL labels under `root`, so training can use them.

    index/path is `train/<wnid>/<name>.JPEG` relative to `imagenet_root` (recorded as the data root),
    the class comes from the synsets file by wnid folder, the mask is resized (nearest) to the map size
    and its weight is 255 wherever it is not ignore. A label that cannot be read is a bad input.
    Resumable: shards already imported are skipped.
    """
    root = Path(root)
    for name in (TRAIN_LIST, SYNSETS):
        if not (root / name).is_file():
            raise FileNotFoundError(f"{root / name} not found: is {root} a released PSSL folder?")
    lines = [line.strip() for line in (root / TRAIN_LIST).read_text().splitlines() if line.strip()][:limit]
    synsets = [line.strip() for line in (root / SYNSETS).read_text().splitlines() if line.strip()]
    class_of = {wnid: i for i, wnid in enumerate(synsets)}
    n = len(lines)
    if n == 0:
        raise ValueError(f"{root / TRAIN_LIST} lists no labels")
    group = create_store(store_path, {"import": {"root": str(root), "map_size": map_size, "shard_size": shard_size}})
    write_layout(group, shard_size=shard_size, map_size=map_size, classes=synsets, models=[], explainers=[],
                 data_root=str(imagenet_root or root), fuse={"released_labels": str(root)})
    arrays = create_index_arrays(group, n)
    mask_array = require_array(group, MASK, (n, map_size, map_size), np.uint8, (map_size, map_size), IGNORE)
    weight_array = require_array(group, WEIGHT, (n, map_size, map_size), np.uint8, (map_size, map_size))
    n_shards = shard_count(n, shard_size)
    done = done_shards(group, INDEX_STAGE, INDEX_KEY, n_shards) & done_shards(group, FUSE_STAGE, FUSE_KEY, n_shards)
    for shard in (s for s in range(n_shards) if not done[s]):
        rows = shard_slice(shard, shard_size, n)
        columns = {name: [] for name in arrays}
        masks = np.full((rows.stop - rows.start, map_size, map_size), IGNORE, np.uint8)
        for j, line in enumerate(lines[rows]):
            wnid = PurePosixPath(line).parent.name
            columns[INDEX_PATH].append(line.split(".JPEG")[0] + ".JPEG")
            columns[INDEX_CLASS_ID].append(class_of.get(wnid, UNKNOWN_CLASS))
            columns[INDEX_CLASS_SOURCE].append(CLASS_FROM_WNID if wnid in class_of else CLASS_UNKNOWN)
            try:
                if wnid not in class_of:
                    raise ValueError(f"wnid {wnid!r} is not in {SYNSETS}")
                label = load_released_label(root / line)
                masks[j] = _resize_nearest(label, map_size, map_size)
                columns[INDEX_HEIGHT].append(label.shape[0])
                columns[INDEX_WIDTH].append(label.shape[1])
                columns[INDEX_STATUS].append(STATUS_OK)
                columns[INDEX_ERROR].append("")
            except (OSError, ValueError) as error:
                columns[INDEX_HEIGHT].append(0)
                columns[INDEX_WIDTH].append(0)
                columns[INDEX_STATUS].append(STATUS_BAD)
                columns[INDEX_ERROR].append(f"label unreadable: {error}")
        columns[INDEX_TARGET] = columns[INDEX_CLASS_ID]
        for name, array in arrays.items():
            array[rows] = np.array(columns[name], dtype=array.dtype if array.dtype.kind in "biuf" else str)
        mask_array[rows] = masks
        weight_array[rows] = np.where(masks == IGNORE, 0, WEIGHT_SCALE).astype(np.uint8)
        mark_done(group, INDEX_STAGE, INDEX_KEY, shard)
        mark_done(group, FUSE_STAGE, FUSE_KEY, shard)
    return {"images": n, "shards": n_shards, "imported_shards": int((~done).sum())}
