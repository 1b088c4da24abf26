"""A plain-text report of a run's store: what is in it, how far each stage got, and what the labels look like.

Read-only; the label statistics are a dask reduction over whole shards, so they scale to the full run.
"""
from __future__ import annotations

from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr

from core.store import (CLASS_SOURCES, CONSENSUS, FOREGROUND, IGNORE, INDEX_CLASS_SOURCE, INDEX_ERROR, INDEX_PATH, INDEX_STATUS, MASK, STATUS_BAD,
                        STATUS_OK, STATUS_PENDING, WEIGHT, WEIGHT_SCALE, StoreError, data_root, fuse_settings,
                        fused_members, is_progress_flag, labelled_images, map_size, n_images, open_store, saliency_name,
                        shard_count, shard_size, store_explainers, store_models)
from pipeline.pictures import contact_sheet, overlay_sheet
from core.store_check import list_arrays, storage_files

MAX_BAD_LISTED = 20
CONTACT_IMAGES = 48


def stored_bytes(root: Path, name: str) -> tuple[int, int]:
    """(bytes of data files on disk, number of data files) for one array, metadata excluded."""
    files = [p for p in (root / name / "c").rglob("*") if p.is_file()] if (root / name / "c").is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def array_table(root: Path, arrays: dict[str, zarr.Array]) -> list[str]:
    """One line per array: shape, dtype, chunk and shard shape, bytes on disk, compression ratio."""
    lines = [f"{'array':<38} {'shape':<18} {'dtype':<10} {'chunk':<14} {'shard':<16} {'on disk':>10} {'ratio':>6}"]
    for name, array in arrays.items():
        on_disk, n_files = stored_bytes(root, name)
        unit = array.shards or array.chunks
        fixed_width = array.dtype.kind in "biufc"
        if fixed_width and on_disk:
            raw = min(array.nbytes, n_files * int(np.prod(unit)) * array.dtype.itemsize)
            ratio = f"{raw / on_disk:.1f}"
        else:
            ratio = "-"
        shape = "x".join(map(str, array.shape))
        dtype = str(array.dtype) if fixed_width else "string"
        lines.append(f"{name:<38} {shape:<18} {dtype:<10} {'x'.join(map(str, array.chunks)):<14} "
                     f"{'x'.join(map(str, array.shards)) if array.shards else '-':<16} {_size(on_disk):>10} {ratio:>6}")
    return lines


def completion(root: Path, group: zarr.Group, arrays: dict[str, zarr.Array], n_shards: int, n: int) -> list[str]:
    """Shards flagged done per stage flag, and per (model, explainer) the shard files actually present."""
    lines = []
    for name in (a for a in arrays if is_progress_flag(a)):
        flags = np.asarray(arrays[name][:], bool)
        lines.append(f"{name:<38} {int(flags.sum()):>6} / {n_shards} shards done")
    for model in store_models(group):
        for explainer in store_explainers(group):
            name = saliency_name(model, explainer)
            if name not in arrays:
                lines.append(f"{model}/{explainer:<30} not started")
                continue
            present = sum((root / name / key).is_file()
                          for key in storage_files(arrays[name], slice(0, n)))
            lines.append(f"{model + '/' + explainer:<38} {present:>6} / {n_shards} shard files written")
    return lines


def bad_inputs(group: zarr.Group) -> list[str]:
    status = np.asarray(group[INDEX_STATUS][:])
    counts = {label: int((status == code).sum())
              for label, code in (("ok", STATUS_OK), ("bad", STATUS_BAD), ("pending", STATUS_PENDING))}
    lines = [", ".join(f"{v} {k}" for k, v in counts.items())]
    bad = np.flatnonzero(status == STATUS_BAD)
    if len(bad):
        paths = group[INDEX_PATH]
        errors = group[INDEX_ERROR] if INDEX_ERROR in group else None
        for i in bad[:MAX_BAD_LISTED]:
            reason = errors[int(i)] if errors is not None else "(no reason recorded)"
            lines.append(f"  [{i}] {paths[int(i)]}: {reason}")
        if len(bad) > MAX_BAD_LISTED:
            lines.append(f"  ... and {len(bad) - MAX_BAD_LISTED} more")
    return lines


def class_id_sources(group: zarr.Group) -> str:
    """How many images got their class id which way (WordNet id, class map, position, file list, unknown)."""
    codes, counts = np.unique(np.asarray(group[INDEX_CLASS_SOURCE][:]), return_counts=True)
    return "class ids: " + ", ".join(f"{count} from {CLASS_SOURCES.get(int(code), f'code {code}')}"
                                     for code, count in zip(codes, counts))


def label_statistics(group: zarr.Group) -> dict | None:
    """Foreground and ignore fractions and mean weight over decided pixels, over fused images with status ok."""
    use = labelled_images(group)
    if not use.any():
        return None
    mask_array, weight_array = group[MASK], group[WEIGHT]
    mask = da.from_zarr(mask_array, chunks=mask_array.shards)[use]
    weight = da.from_zarr(weight_array, chunks=weight_array.shards)[use]
    decided = mask != IGNORE
    with dask.config.set(scheduler="threads"):
        pixels, fg, ignore, n_decided, weight_sum = dask.compute(
            mask.size, (mask == FOREGROUND).sum(), (~decided).sum(), decided.sum(),
            da.where(decided, weight.astype(np.float64), 0.0).sum())
    return {
        "images": int(use.sum()),
        "foreground_fraction": float(fg) / pixels,
        "ignore_fraction": float(ignore) / pixels,
        "mean_weight_decided": float(weight_sum) / WEIGHT_SCALE / max(int(n_decided), 1),
    }


def summarize(store_path: str | Path) -> str:
    """The whole report as text (the CLI prints it)."""
    root = Path(store_path)
    group = open_store(root, mode="r")
    arrays = list_arrays(group)
    n, k = n_images(group), shard_size(group)
    n_shards = shard_count(n, k)
    out = [f"store {root}",
           f"  {n} images, shard size {k} ({n_shards} shards), map size {map_size(group)}",
           f"  models {store_models(group)}, explainers {store_explainers(group)}",
           f"  data root {data_root(group)}, created {group.attrs.get('created', '?')}",
           "", "arrays"]
    out += ["  " + line for line in array_table(root, arrays)]
    out += ["", "completion"] + ["  " + line for line in completion(root, group, arrays, n_shards, n)]
    out += ["", "inputs"] + ["  " + line for line in _readable(lambda: [class_id_sources(group)] + bad_inputs(group))]
    out += ["", "labels"] + ["  " + line for line in _readable(lambda: label_lines(group))]
    return "\n".join(out)


def label_lines(group: zarr.Group) -> list[str]:
    stats = label_statistics(group)
    if stats is None:
        return ["not fused yet"]
    return [f"fuse config: {fuse_settings(group)}",
            f"over {stats['images']} fused images with status ok:",
            f"foreground {stats['foreground_fraction']:.1%}, ignore {stats['ignore_fraction']:.1%}, "
            f"mean weight over non-ignore {stats['mean_weight_decided']:.3f}",
            f"consensus stored: {'yes' if CONSENSUS in group else 'no'}"]


def _readable(lines) -> list[str]:
    """A section of the report, or one line saying it could not be read: a damaged store is reported, not raised."""
    try:
        return lines()
    except Exception as error:  # noqa: BLE001 - any codec failure of a damaged shard
        return [f"unreadable: {type(error).__name__}: {' '.join(str(error).split())[:200]} "
                "(`inspect --verify` names the damaged shards)"]


def write_pictures(store_path: str | Path, out_dir: str | Path | None = None, overlay: list[int] = (),
                   contact: bool = False, contact_images: int = CONTACT_IMAGES) -> list[Path]:
    """Overlay sheets for the `overlay` image indices and, if asked, a contact sheet of the first fused images.

    Pictures go to `out_dir`, by default `<store>.pictures/` beside the store; returns their paths.
    """
    root = Path(store_path)
    group = open_store(root, mode="r")
    if MASK not in group:
        raise StoreError(f"{root} has no labels yet (run the fuse stage first)")
    n = n_images(group)
    out = Path(out_dir) if out_dir is not None else root.with_name(root.name + ".pictures")
    out.mkdir(parents=True, exist_ok=True)
    members = fused_members(group)
    written = []
    for index in overlay:
        if not 0 <= index < n:
            raise IndexError(f"overlay image {index} is out of range: the store has {n} images")
        written.append(overlay_sheet(group, index, members, out / f"overlay_{index:07d}.png"))
    if contact:
        chosen = np.flatnonzero(labelled_images(group))[:contact_images]
        written.append(contact_sheet(group, [int(i) for i in chosen], out / "contact_sheet.png"))
    return written
