"""Labels-only stores (store.keep_maps: false): maps deleted once fused, labels identical, re-fusing refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.store import (MASK, PRUNE_KEY, PRUNE_STAGE, WEIGHT, StoreError, mark_done, open_store, progress_name,
                        saliency_name)
from pipeline.fuse import stage as fuse
from pipeline.inspect import report as inspect_store
from pipeline.inspect import verify
from benchmarks.synthetic_store import make_synthetic_store
from pipeline.explain.stage import _redo_damaged
from pipeline.inspect.gallery import build_gallery

RULE = {"combine": "none", "fg_threshold": 0.5, "bg_threshold": 0.2, "num_workers": 2, "shards_per_batch": 1}


def labels_only(**fuse_keys) -> dict:
    return {"store": {"keep_maps": False}, "fuse": {**RULE, **fuse_keys}}


def map_shards(store: Path) -> set[int]:
    """The shards that still have a file in any saliency array (maps, scales, q99s)."""
    return {int(p.parts[p.parts.index("c") + 1]) for p in (store / "saliency").rglob("*")
            if p.is_file() and "c" in p.parts}


def test_maps_go_once_fused_and_the_labels_equal_a_full_store(tmp_path):
    full, pruned = tmp_path / "full.zarr", tmp_path / "pruned.zarr"
    for store in (full, pruned):
        make_synthetic_store(store, 10, map_size=16, shard=4, noise=1.0, seed=4, explained=store == full)
    fuse.run({"fuse": RULE}, full)
    group = open_store(pruned)
    for model in group.attrs["models"]:
        mark_done(group, "explain", model, 0)  # only shard 0 is ready: only its maps may go
    summary = fuse.run(labels_only(), pruned)
    assert summary["shards_fused"] == 1 and not summary["maps_kept"]
    assert group[progress_name(PRUNE_STAGE, PRUNE_KEY)][:].tolist() == [True, False, False]
    assert map_shards(pruned) == {1, 2}  # shard 0's files are gone, the others wait to be fused
    for model in group.attrs["models"]:
        for shard in (1, 2):
            mark_done(group, "explain", model, shard)
    fuse.run(labels_only(), pruned)
    assert map_shards(pruned) == set()
    a, b = open_store(full), open_store(pruned)
    for name in (MASK, WEIGHT):
        assert np.array_equal(a[name][:], b[name][:]), name
    assert verify.verify_store(pruned) == []  # the dropped maps are not damage
    _redo_damaged(b, pruned, "net_a", 4, 10)  # nor does the explain stage take them for damage and redo them
    assert b[progress_name("explain", "net_a")][:].all()


def test_refusing_a_labels_only_store_is_one_line(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    fuse.run(labels_only(), store)
    assert fuse.run(labels_only(), store)["shards_fused"] == 0  # the same run again: nothing to do, no refusal
    with pytest.raises(StoreError, match="labels-only store") as refused:
        fuse.run(labels_only(fg_threshold=0.6, overwrite=True), store)
    assert "\n" not in str(refused.value) and "new run" in str(refused.value)
    with pytest.raises(StoreError, match="labels-only"):  # an overlay draws the members' maps
        inspect_store.write_pictures(store, tmp_path / "pictures", overlay=[0])
    assert inspect_store.write_pictures(store, tmp_path / "pictures", contact=True)[0].is_file()
    with pytest.raises(StoreError, match="labels-only"):  # its pages draw the members' maps too
        build_gallery(store, tmp_path / "gallery")
    (store / MASK / "c" / "1" / "0" / "0").unlink()  # damaged labels cannot be repaired without maps
    with pytest.raises(StoreError, match="damaged labels need their maps"):
        fuse.run(labels_only(), store)


def test_turning_keep_maps_off_prunes_a_fused_store(tmp_path):
    store = tmp_path / "s.zarr"
    make_synthetic_store(store, 8, map_size=16, shard=4)
    fuse.run({"fuse": RULE}, store)
    assert map_shards(store) == {0, 1}
    before = open_store(store)[MASK][:]
    assert fuse.run(labels_only(), store)["shards_fused"] == 0
    assert map_shards(store) == set() and np.array_equal(open_store(store)[MASK][:], before)
    assert saliency_name("net_a", "gradcam") in open_store(store)  # the array (and its metadata) stays
