"""`python -m pipeline gallery STORE OUT`: a static site to browse a store's labels (open OUT/index.html).

Per shard (pipeline/inspect/gallery/shard.py, Ray tasks for a large store): each labelled image's label on its
photo and its maps as one sprite. Then the views (pipeline/inspect/gallery/views.py): every image sorted by each
number, in fixed-size pages, per class and for the images the classifiers barely see. The pages
(static/) load their data with <script> tags, so the site works from a shared folder without a server.
A re-run builds only the shards fused since the last one, and rewrites only the pages that changed;
other fuse or picture settings rebuild every shard.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from core.errors import PsslError
from core.store import (FUSE_KEY, FUSE_STAGE, INDEX_STATUS, MASK, WEIGHT, StoreError, fuse_settings, fused_members,
                        map_size, n_images, open_store, pruned_shards, q99_name, read_flags, saliency_name, shard_count,
                        shard_size, shard_slice, store_explainers, store_models)
from core.store_check import damaged_shards, repair_command
from core.target_probability import LOW_TARGET_PROBABILITY
from pipeline.inspect.gallery.pictures import colour_stops
from pipeline.inspect.gallery.shard import STATS, Settings, build_shard, fingerprint, layout, objectness_members
from pipeline.inspect.gallery.site import copy_static, write_data, write_if_changed
from pipeline.inspect.gallery.views import KEYS, PAGE_SIZE, Table, write_views

IN_PROCESS_SHARDS = 8  # fewer shards to build than this: no Ray (its start costs more than the work)


def build_gallery(store_path: str | Path, out: str | Path, low_prob: float = LOW_TARGET_PROBABILITY,
                  settings: Settings = Settings(), ray_config: dict | None = None, progress=None) -> dict:
    """Build or update the site; returns what was done. `ray_config` ({"ray": {...}}) names a cluster."""
    started = time.perf_counter()
    store_path, out = Path(store_path), Path(out)
    group = open_store(store_path, mode="r")
    if MASK not in group:
        raise StoreError(f"{store_path} has no labels yet: run the fuse stage first (`make generate-labels`)")
    n, k = n_images(group), shard_size(group)
    print_ = fingerprint(group, settings)
    state = out / "build" / "state.json"
    if state.is_file() and json.loads(state.read_text()).get("fingerprint") != print_:
        shutil.rmtree(out / "build")  # other labels or pictures: every shard again
    (out / "build").mkdir(parents=True, exist_ok=True)
    write_if_changed(state, json.dumps({"fingerprint": print_}).encode())
    fused = np.flatnonzero(read_flags(group, FUSE_STAGE, FUSE_KEY, shard_count(n, k)))
    todo = [int(s) for s in fused if not (out / "build" / f"{s}.npz").is_file()]
    dropped = pruned_shards(group, shard_count(n, k))
    pruned = [s for s in todo if dropped[s]]
    if pruned:  # its pages draw every member's map, which would read as zeros
        raise StoreError(f"gallery: the maps of {len(pruned)} shard(s), e.g. shard {pruned[0]}, were deleted after "
                         "fusing (labels-only store, store.keep_maps: false); build the gallery before they go")
    _refuse_damaged(store_path, group, todo)
    _build_shards(store_path, out, todo, settings, ray_config, progress, group)
    stats, built = np.full((n, len(STATS)), np.nan, np.float32), np.zeros(n, bool)
    for shard in fused:
        with np.load(out / "build" / f"{shard}.npz") as numbers:
            stats[numbers["index"]] = numbers["stats"]
        built[shard_slice(int(shard), k, n)] = True
    table = Table(group, stats, built, low_prob)
    objectness = objectness_members(group)
    keys = [key for key in KEYS if key != "objectness" or objectness]
    sizes = write_views(out, table, keys)
    write_data(out, "meta", {
        "store": str(store_path.resolve()), "images": n, "shard_size": k, "map_size": map_size(group),
        "page_size": PAGE_SIZE, "models": store_models(group), "explainers": store_explainers(group),
        "members": [f"{m}/{e}" for m, e in fused_members(group)], "objectness": [f"{m}/{e}" for m, e in objectness],
        "keys": {key: KEYS[key] for key in keys}, "views": sizes, "low_prob": low_prob, "layout": layout(group),
        "panel": settings.panel, "map_colours": colour_stops(), "fuse": {key: value for key, value in fuse_settings(group).items() if key != "members"},
        "shards": {"fused": int(len(fused)), "total": shard_count(n, k)}})
    copy_static(out)
    return {"shards_built": len(todo), "shards_kept": int(len(fused)) - len(todo), "images": int(table.labelled.sum()),
            "seconds": round(time.perf_counter() - started, 1), "index": str(out / "index.html")}


def _refuse_damaged(store_path: Path, group, todo: list[int]) -> None:
    """A damaged label or map shard would draw zeros as labels: stop before drawing, naming it and the repair."""
    members = fused_members(group) + objectness_members(group)
    names = [MASK, WEIGHT, INDEX_STATUS] + [f(m, e) for m, e in members for f in (saliency_name, q99_name)]
    damaged = damaged_shards(store_path, group, names, todo, shard_size(group), n_images(group))
    if damaged:
        raise StoreError(f"gallery: {damaged[min(damaged)][0]} ({len(damaged)} damaged shard(s)); "
                         f"{repair_command(store_path)}")


def _build_shards(store_path: Path, out: Path, todo: list[int], settings: Settings, ray_config: dict | None,
                  progress, group) -> None:
    n, k = n_images(group), shard_size(group)
    images = {s: len(range(n)[shard_slice(s, k, n)]) for s in todo}
    if progress is not None:
        progress.begin("gallery", sum(images.values()))
    if len(todo) < IN_PROCESS_SHARDS and not (ray_config or {}).get("ray", {}).get("address"):
        for shard in todo:
            build_shard(str(store_path), str(out), shard, settings)
            if progress is not None:
                progress.advance(images[shard])
        return
    import ray

    from pipeline.cluster.session import StageError, ray_session

    with ray_session(ray_config or {}):
        task = ray.remote(num_cpus=1, max_retries=3)(build_shard)
        pending = {task.remote(str(store_path), str(out), shard, settings): shard for shard in todo}
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            shard = pending.pop(ready)
            try:
                ray.get(ready)
            except ray.exceptions.RayTaskError as error:  # one line, not Ray's folded traceback
                if isinstance(error.cause, PsslError):
                    raise error.cause from None
                raise StageError(f"gallery: shard {shard} failed ({type(error.cause).__name__}: {error.cause}); "
                                 "re-run the same command: built shards are kept") from None
            if progress is not None:
                progress.advance(images[shard])
