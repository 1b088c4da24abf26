"""The released PSSL label format read by PaddleSeg's `PSSLDataset`, both ways.

Layout (PaddleSeg `paddleseg/datasets/pssl.py` and `configs/pssl/README.md`):

    pssl_root/train.txt                       one label per line: train/<wnid>/<name>.JPEG_eiseg.npz
    pssl_root/imagenet_lsvrc_2015_synsets.txt one WordNet id per line; line number = class id 0..999
    pssl_root/train/<wnid>/<name>.JPEG_eiseg.npz   the mask, under the key `arr_0`

PaddleSeg turns `arr_0 == 1` into the image's class (looked up from the synsets by the wnid prefix
of the file name) and every other value into background (1000); 1001 is its ignore index, used
only for crop padding. So the released labels are binary at the image's own size (the label goes
through the same resize and crop as the image). This project's mask also has ignore (255): export
keeps it as 255, which PaddleSeg reads as background and `load_released_label` reads back as
ignore. The per-pixel weight has no place in the format and is not exported.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from pipeline.fuse import (BACKGROUND, FOREGROUND, FUSE_KEY, FUSE_STAGE, IGNORE, MASK, WEIGHT,
                           labelled_images)
from pipeline.store import (STATUS_BAD, STATUS_OK, StoreError, create_store, done_shards, mark_done, n_images,
                            open_store, progress_name, require_array, shard_count, shard_slice)

TRAIN_LIST, SYNSETS, SUFFIX = "train.txt", "imagenet_lsvrc_2015_synsets.txt", "_eiseg.npz"
INDEX_ARRAYS = {"path": (str, ""), "class_id": (np.int16, -1), "target": (np.int16, -1),
                "height": (np.int32, 0), "width": (np.int32, 0), "status": (np.uint8, 0), "error": (str, "")}


def load_released_label(npz_path: str | Path, ignore_as_background: bool = False) -> np.ndarray:
    """The [H, W] uint8 mask of one label file: 1 foreground, 0 background, 255 ignore.

    As in PaddleSeg, only 1 is foreground; 255 (written by this project's export) is ignore unless
    `ignore_as_background`, which reproduces PaddleSeg's reading exactly; any other value is background.
    """
    with np.load(npz_path) as data:
        if "arr_0" not in data:
            raise ValueError(f"{npz_path}: no `arr_0` array (keys: {list(data.keys())})")
        raw = np.asarray(data["arr_0"])
    if raw.ndim != 2:
        raise ValueError(f"{npz_path}: arr_0 has shape {raw.shape}, expected a 2-D mask")
    mask = np.where(raw == FOREGROUND, FOREGROUND, BACKGROUND).astype(np.uint8)
    if not ignore_as_background:
        mask[raw == IGNORE] = IGNORE
    return mask


def _resize_nearest(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))


def label_path(image_path: str, wnid: str) -> str:
    """`train/<wnid>/<image file name>_eiseg.npz`, the line PaddleSeg expects in train.txt."""
    return f"train/{wnid}/{PurePosixPath(image_path).name}{SUFFIX}"


def export_store(store_path: str | Path, out_dir: str | Path) -> int:
    """Write every fused image with status ok as a released-format label; return how many.

    The mask is resized (nearest) from the map size back to the image's own size. The wnid folder is
    the target class's WordNet id when the store lists its classes, else the image's parent folder.
    """
    group = open_store(store_path, mode="r")
    if MASK not in group or progress_name(FUSE_STAGE, FUSE_KEY) not in group:
        raise StoreError(f"{store_path} has no labels to export (run the fuse stage first)")
    n, k = n_images(group), int(group.attrs["shard_size"])
    classes = group.attrs.get("classes")
    out = Path(out_dir)
    labelled = labelled_images(group)
    paths = group["index/path"][:]
    targets = np.asarray(group["index/target"][:])
    heights, widths = np.asarray(group["index/height"][:]), np.asarray(group["index/width"][:])
    lines: dict[str, int] = {}
    for shard in range(shard_count(n, k)):
        rows = shard_slice(shard, k, n)
        chosen = [i for i in range(rows.start, rows.stop) if labelled[i]]
        if not chosen:
            continue
        masks = group[MASK][rows]
        for i in chosen:
            path = str(paths[i])
            wnid = classes[targets[i]] if classes and targets[i] >= 0 else PurePosixPath(path).parent.name
            line = label_path(path, wnid)
            if line in lines:
                raise ValueError(f"images {lines[line]} and {i} would both be exported as {line}")
            lines[line] = i
            (out / line).parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(out / line, _resize_nearest(masks[i - rows.start], int(heights[i]), int(widths[i])))
    (out / TRAIN_LIST).write_text("".join(f"{line}\n" for line in lines))
    if classes:
        (out / SYNSETS).write_text("".join(f"{wnid}\n" for wnid in classes))
    return len(lines)


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
    group.attrs.update({"shard_size": shard_size, "map_size": map_size, "classes": synsets, "models": [],
                        "explainers": [], "data_root": str(imagenet_root or root),
                        "fuse": {"released_labels": str(root)}})
    arrays = {name: require_array(group, f"index/{name}", (n,), dtype, fill_value=fill)
              for name, (dtype, fill) in INDEX_ARRAYS.items()}
    mask_array = require_array(group, MASK, (n, map_size, map_size), np.uint8, (map_size, map_size), IGNORE)
    weight_array = require_array(group, WEIGHT, (n, map_size, map_size), np.uint8, (map_size, map_size))
    n_shards = shard_count(n, shard_size)
    done = done_shards(group, "index", "images", n_shards) & done_shards(group, FUSE_STAGE, FUSE_KEY, n_shards)
    for shard in (s for s in range(n_shards) if not done[s]):
        rows = shard_slice(shard, shard_size, n)
        columns = {name: [] for name in INDEX_ARRAYS}
        masks = np.full((rows.stop - rows.start, map_size, map_size), IGNORE, np.uint8)
        for j, line in enumerate(lines[rows]):
            wnid = PurePosixPath(line).parent.name
            columns["path"].append(line.split(".JPEG")[0] + ".JPEG")
            columns["class_id"].append(class_of.get(wnid, -1))
            try:
                if wnid not in class_of:
                    raise ValueError(f"wnid {wnid!r} is not in {SYNSETS}")
                label = load_released_label(root / line)
                masks[j] = _resize_nearest(label, map_size, map_size)
                columns["height"].append(label.shape[0])
                columns["width"].append(label.shape[1])
                columns["status"].append(STATUS_OK)
                columns["error"].append("")
            except (OSError, ValueError) as error:
                columns["height"].append(0)
                columns["width"].append(0)
                columns["status"].append(STATUS_BAD)
                columns["error"].append(f"label unreadable: {error}")
        columns["target"] = columns["class_id"]
        for name, (dtype, _) in INDEX_ARRAYS.items():
            arrays[name][rows] = np.array(columns[name], dtype=dtype)
        mask_array[rows] = masks
        weight_array[rows] = np.where(masks == IGNORE, 0, 255).astype(np.uint8)
        mark_done(group, "index", "images", shard)
        mark_done(group, FUSE_STAGE, FUSE_KEY, shard)
    return {"images": n, "shards": n_shards, "imported_shards": int((~done).sum())}
