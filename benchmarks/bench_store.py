"""Store bytes per image and label pixels changed: a store written whole (float16 maps) against a compact one.

Both stores come from real `generate-labels` runs of the same config: `--full` with every map kept
whole (store.compact=false, or any store written before encodings), `--compact` as the explain stage
now writes it. Reported: bytes on disk per image by array group and by explainer; and the fraction of
label pixels the encoding changes, measured on the full store alone so nothing but the encoding
differs: each member's full maps are put through the encoding its compact array records (levels,
delta filter; Grad-CAM-like grids decode bit-identically, tests/pipeline/explain/test_stage.py) and
fused again with the store's whole fuse rule (CRF included). A sweep over SmoothGrad's levels shows
the trade-off behind `store.unit_levels`; a second one puts SmoothGrad's 255-level maps through baseline
JPEG instead, the transform coder that would exploit the maps' spatial correlation. The labels of the
two runs are compared too (that number also holds the runs' own float noise).

    .venv/bin/python -m benchmarks.bench_store --full runs/full/pssl.zarr --compact runs/sample/pssl.zarr
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import zarr
from PIL import Image

from benchmarks.result_file import write_result
from core.images import image_at_map_size
from core.store import (ENCODING_UNIT, INDEX_STATUS, MASK, STATUS_OK, WEIGHT, WEIGHT_SCALE, map_encoding, n_images,
                        open_store, q99_name, saliency_name, unit_levels)
from pipeline.fuse.stage import recorded_plan, stored_q99
from pipeline.fuse.rules import fuse_image, unlabelled
from pipeline.maps.stored import StoredMaps, from_unit, to_unit

SWEPT = "smooth_grad"
SWEEP = (255, 63, 31, 15, 7, 3)
JPEG_QUALITIES = (50, 75, 90)


def bytes_by_group(path: Path) -> dict[str, int]:
    """Bytes of every file under the store, grouped by top-level folder (saliency, pssl, index, ...)."""
    groups: dict[str, int] = {}
    for file in path.rglob("*"):
        if file.is_file():
            top = file.relative_to(path).parts[0] if len(file.relative_to(path).parts) > 1 else "metadata"
            groups[top] = groups.get(top, 0) + file.stat().st_size
    return groups


def member_bytes(path: Path, members) -> dict[str, int]:
    """Bytes per explainer (summed over models) of the map arrays alone."""
    per: dict[str, int] = {}
    for model, explainer in members:
        folder = path / saliency_name(model, explainer)
        per[explainer] = per.get(explainer, 0) + sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return per


def jpeg_round_trip(stored: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """Each uint8 map through baseline JPEG (PIL, optimised Huffman tables) and back, and the bytes it took."""
    decoded, total = np.empty_like(stored), 0
    for i, image in enumerate(stored):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, "JPEG", quality=quality, optimize=True)
        total += buffer.tell()
        decoded[i] = np.asarray(Image.open(buffer))
    return decoded, total


def encoded_bytes(array: zarr.Array, stored: np.ndarray) -> int:
    """Bytes of `stored` written with `array`'s own filters and compressor, one chunk per image."""
    with tempfile.TemporaryDirectory() as folder:
        copy = zarr.create_array(folder, shape=stored.shape, dtype=stored.dtype, chunks=(1, *stored.shape[1:]),
                                 filters=array.filters, compressors=array.compressors, fill_value=0)
        copy[:] = stored
        return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file() and f.name != "zarr.json")


class Comparison:
    """The full store's labels, and the labels after re-encoding its maps as a compact store would."""

    def __init__(self, full: zarr.Group, compact: zarr.Group):
        self.full, self.compact = full, compact
        self.plan = recorded_plan(full)
        self.members = list(self.plan.members)
        self.n = n_images(full)
        self.ok = np.asarray(full[INDEX_STATUS][:]) == STATUS_OK
        self.q99 = stored_q99(full, self.members)
        self.images = [image_at_map_size(full, i) for i in range(self.n)]
        self.maps = [StoredMaps(full, m, e)[:] for m, e in self.members]
        self.before = self.labels(self.maps)

    def labels(self, maps: list[np.ndarray]) -> dict[str, np.ndarray]:
        fused = [fuse_image(np.stack([m[i] for m in maps]), self.q99[:, i], self.plan.explainers, self.plan.rule,
                            image=self.images[i]) if self.ok[i] else unlabelled(maps[0].shape[-1])
                 for i in range(self.n)]
        return {"mask": np.stack([f.mask for f in fused]), "weight": np.stack([f.weight for f in fused])}

    def changed(self, levels_of: dict[str, int] | None = None, jpeg_quality: int | None = None) -> dict[str, float]:
        """Label pixels changed when every unit member keeps its compact array's levels (or `levels_of`);
        with `jpeg_quality`, SWEPT's maps go through JPEG at 255 levels instead."""
        maps, unit_bytes = [], {}
        for maps_full, (model, explainer) in zip(self.maps, self.members):
            array = self.compact[saliency_name(model, explainer)]
            if map_encoding(array) != ENCODING_UNIT:
                maps.append(maps_full)  # grids decode bit-identically
                continue
            levels = (levels_of or {}).get(explainer, unit_levels(array))
            q = self.full[q99_name(model, explainer)][:]
            if jpeg_quality and explainer == SWEPT:
                stored, size = jpeg_round_trip(to_unit(maps_full, q, 255), jpeg_quality)
                levels = 255
            else:
                stored = to_unit(maps_full, q, levels)
                size = encoded_bytes(array, stored)
            unit_bytes[explainer] = unit_bytes.get(explainer, 0) + size
            maps.append(from_unit(stored, q, levels))
        after = self.labels(maps)
        ok = self.ok
        weight_step = np.abs(after["weight"].astype(np.int16) - self.before["weight"])[ok] / WEIGHT_SCALE
        return {"mask": float((after["mask"] != self.before["mask"])[ok].mean()),
                "weight": float((weight_step > 0).mean()), "weight_mean_abs": float(weight_step.mean()),
                **{f"kb:{e}": b / self.n / 1000 for e, b in unit_bytes.items()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=Path, required=True)
    parser.add_argument("--compact", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/bench_store.md"))
    args = parser.parse_args(argv)
    stores = {"full": open_store(args.full, mode="r"), "compact": open_store(args.compact, mode="r")}
    paths = {"full": args.full, "compact": args.compact}
    comparison = Comparison(stores["full"], stores["compact"])
    n, members = comparison.n, comparison.members
    sizes = {name: bytes_by_group(path) for name, path in paths.items()}
    per_member = {name: member_bytes(path, members) for name, path in paths.items()}
    encoding = comparison.changed()
    sweep = {levels: comparison.changed({SWEPT: levels}) for levels in SWEEP}
    jpeg = {quality: comparison.changed(jpeg_quality=quality) for quality in JPEG_QUALITIES}
    ok = comparison.ok
    between = {name: float((stores["full"][name][:] != stores["compact"][name][:])[ok].mean()) for name in (MASK, WEIGHT)}
    groups = sorted(set(sizes["full"]) | set(sizes["compact"]))
    total = {name: sum(size.values()) / n / 1000 for name, size in sizes.items()}
    lines = [f"# Store bytes per image: whole float16 maps vs the compact encodings ({n} images, "
             f"{len(members)} members, load average {os.getloadavg()[0]:.1f})", "",
             f"Command: `.venv/bin/python -m benchmarks.bench_store --full {args.full} --compact {args.compact}`", "",
             "| part | full (KB / image) | compact (KB / image) |", "|---|---:|---:|"]
    lines += [f"| {g}/ | {sizes['full'].get(g, 0) / n / 1000:.1f} | {sizes['compact'].get(g, 0) / n / 1000:.1f} |"
              for g in groups]
    lines += [f"| saliency of {e} ({sum(1 for _, x in members if x == e)} models) | "
              f"{per_member['full'].get(e, 0) / n / 1000:.1f} | {per_member['compact'].get(e, 0) / n / 1000:.2f} |"
              for e in dict.fromkeys(e for _, e in members)]
    lines += [f"| **total** | **{total['full']:.1f}** | **{total['compact']:.1f}** |", "",
              "Label pixels changed by the encoding alone (the full store's maps put through each compact array's "
              f"encoding and fused again with the whole fuse rule): mask **{encoding['mask']:.2e}**, weight "
              f"{encoding['weight']:.2e} (mean |change| of the weight {encoding['weight_mean_abs']:.1e}).",
              f"Between the two runs' stored labels (the encoding plus any float difference between the runs, "
              f"e.g. eager against ONNX Runtime when the full store was made with explain.runtime=eager): mask {between[MASK]:.2e}, weight {between[WEIGHT]:.2e}.", "",
              f"{SWEPT}'s levels (`store.unit_levels`; the other members as the compact store keeps them):", "",
              f"| {SWEPT} levels | its KB / image | mask pixels changed | weight pixels changed | mean weight change |",
              "|---:|---:|---:|---:|---:|",
              *[f"| {levels} | {row.get(f'kb:{SWEPT}', 0):.1f} | {row['mask']:.2e} | {row['weight']:.2e} | "
                f"{row['weight_mean_abs']:.1e} |" for levels, row in sweep.items()], "",
              f"{SWEPT} through baseline JPEG at 255 levels instead (PIL; the same comparison):", "",
              f"| JPEG quality | {SWEPT} KB / image | mask pixels changed | weight pixels changed | mean weight change |",
              "|---:|---:|---:|---:|---:|",
              *[f"| {quality} | {row.get(f'kb:{SWEPT}', 0):.1f} | {row['mask']:.2e} | {row['weight']:.2e} | "
                f"{row['weight_mean_abs']:.1e} |" for quality, row in jpeg.items()]]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
