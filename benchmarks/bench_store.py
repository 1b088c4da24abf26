"""Store bytes per image and label pixels changed: a store written whole (float16 maps) against a compact one.

Both stores come from real `generate-labels` runs of the same config: `--full` with every map kept
whole (store.compact=false, or any store written before encodings), `--compact` as the explain stage
now writes it. Reported: bytes on disk per image by array group; and the fraction of label pixels
the encoding changes, measured on the full store alone so nothing but the encoding differs: its
non-grid maps are put through the compact encoding (8-bit unit levels) and fused again with the same
settings (Grad-CAM-like maps decode bit-identically from their grid, tests/test_explain_stage.py).
The masks of the two runs are compared too (that number also holds the runs' own float noise).

    .venv/bin/python -m benchmarks.bench_store --full runs/full/pssl.zarr --compact runs/sample/pssl.zarr
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from numcodecs import Zstd

from benchmarks.result_file import write_result
from core.store import (INDEX_STATUS, MASK, STATUS_OK, UNIT_LEVELS, WEIGHT, fuse_settings, fused_members, n_images,
                        open_store, q99_name, saliency_name)
from explainers import EXPLAINERS
from pipeline.fuse import fuse_maps, member_weights, stored_q99
from pipeline.stored_maps import StoredMaps, from_unit, to_unit

SWEEP = (255, 127, 63, 31, 15)
CODEC = Zstd(level=0)  # zarr v3's default compressor for these arrays


def bytes_by_group(path: Path) -> dict[str, int]:
    """Bytes of every file under the store, grouped by top-level folder (saliency, pssl, index, ...)."""
    groups: dict[str, int] = {}
    for file in path.rglob("*"):
        if file.is_file():
            top = file.relative_to(path).parts[0] if len(file.relative_to(path).parts) > 1 else "metadata"
            groups[top] = groups.get(top, 0) + file.stat().st_size
    return groups


def member_bytes(path: Path, group, members) -> dict[str, int]:
    """Bytes per explainer (summed over models) of the map arrays alone."""
    per: dict[str, int] = {}
    for model, explainer in members:
        folder = path / saliency_name(model, explainer)
        per[explainer] = per.get(explainer, 0) + sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return per


def changed_by_encoding(group, levels: int = UNIT_LEVELS) -> tuple[float, float, float]:
    """(mask pixels changed, weight pixels changed, unit-encoded KB per image) when the full store's
    non-grid maps go through the unit encoding with `levels` levels and are fused again."""
    settings, members = fuse_settings(group), fused_members(group)
    n = n_images(group)
    ok = np.asarray(group[INDEX_STATUS][:]) == STATUS_OK
    q99 = stored_q99(group, members)
    weights = member_weights(None, len(members), n)
    full = [StoredMaps(group, m, e)[:] for m, e in members]
    compact, encoded = [], 0
    for maps, (model, explainer) in zip(full, members):
        if getattr(EXPLAINERS.get(explainer), "feature_grid", False):
            compact.append(maps)
            continue
        q = group[q99_name(model, explainer)][:]
        stored = to_unit(maps, q, levels)
        encoded += sum(len(CODEC.encode(image)) for image in stored)
        compact.append(from_unit(stored, q, levels))
    args = (weights, ok, settings["fg_threshold"], settings["bg_threshold"])
    before = fuse_maps(full, *args, q99=q99, keep_consensus=False)
    after = fuse_maps(compact, *args, q99=q99, keep_consensus=False)
    return (float((before["mask"] != after["mask"])[ok].mean()), float((before["weight"] != after["weight"])[ok].mean()),
            encoded / n / 1000)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=Path, required=True)
    parser.add_argument("--compact", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("results/bench_store.md"))
    args = parser.parse_args(argv)
    stores = {"full": open_store(args.full, mode="r"), "compact": open_store(args.compact, mode="r")}
    n = n_images(stores["full"])
    members = fused_members(stores["full"])
    sizes = {name: bytes_by_group(path) for name, path in (("full", args.full), ("compact", args.compact))}
    per_member = {name: member_bytes(path, stores[name], members)
                  for name, path in (("full", args.full), ("compact", args.compact))}
    mask_changed, weight_changed, _ = changed_by_encoding(stores["full"])
    sweep = {levels: changed_by_encoding(stores["full"], levels) for levels in SWEEP}
    ok = np.asarray(stores["full"][INDEX_STATUS][:]) == STATUS_OK
    between = float((stores["full"][MASK][:] != stores["compact"][MASK][:])[ok].mean())
    weight_between = float((stores["full"][WEIGHT][:] != stores["compact"][WEIGHT][:])[ok].mean())
    groups = sorted(set(sizes["full"]) | set(sizes["compact"]))
    lines = [f"# Store bytes per image: whole float16 maps vs the compact encodings ({n} images, "
             f"{len(members)} members, load average {os.getloadavg()[0]:.1f})", "",
             f"Command: `.venv/bin/python -m benchmarks.bench_store --full {args.full} --compact {args.compact}`", "",
             "| part | full (KB / image) | compact (KB / image) |", "|---|---:|---:|"]
    lines += [f"| {g}/ | {sizes['full'].get(g, 0) / n / 1000:.1f} | {sizes['compact'].get(g, 0) / n / 1000:.1f} |"
              for g in groups]
    lines += [f"| saliency of {e} ({sum(1 for _, x in members if x == e)} models) | "
              f"{per_member['full'].get(e, 0) / n / 1000:.1f} | {per_member['compact'].get(e, 0) / n / 1000:.2f} |"
              for e in dict.fromkeys(e for _, e in members)]
    lines += [f"| **total** | **{sum(sizes['full'].values()) / n / 1000:.1f}** | "
              f"**{sum(sizes['compact'].values()) / n / 1000:.1f}** |", "",
              f"Label pixels changed by the encoding alone (the full store's maps re-encoded and fused again): "
              f"mask {mask_changed:.2e}, weight {weight_changed:.2e}.",
              f"Between the two runs' stored labels (encoding plus the runs' float noise: ONNX Runtime and "
              f"channels_last against eager): mask {between:.2e}, weight {weight_between:.2e}.", "",
              "Fewer levels for the non-grid maps (SmoothGrad, LIME; zstd as zarr writes them): smaller, but more "
              "label pixels change:", "",
              "| levels | SmoothGrad + LIME KB / image | mask pixels changed | weight pixels changed |",
              "|---:|---:|---:|---:|",
              *[f"| {levels} | {kb:.1f} | {mask:.2e} | {weight:.2e} |" for levels, (mask, weight, kb) in sweep.items()]]
    write_result("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
