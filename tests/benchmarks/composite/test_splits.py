"""The splits: no stamp or background photo in both, every class gets the same run of kinds, backgrounds are dealt
evenly, and the committed tables make a world of the promised size."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from benchmarks.composite.backgrounds import load_backgrounds
from benchmarks.composite.catalogue import load_catalogue
from benchmarks.composite.splits import KIND_RUN, SINGLE, check_disjoint, pool, scene_specs
from benchmarks.composite.tables import SPLITS, CompositeError


def test_a_stamp_or_photo_in_both_splits_is_refused(tiny_world):
    stamps, photos = tiny_world.stamps(), tiny_world.photos()
    check_disjoint(stamps, photos)
    with pytest.raises(CompositeError, match="stamp in both splits: birds/peacock_a.png"):
        check_disjoint(stamps + [replace(stamps[0], split="heldout")], photos)
    with pytest.raises(CompositeError, match="background photo in both splits: scikit-image:sky.png"):
        check_disjoint(stamps, photos + [replace(photos[0], name="sky2", split="heldout")])


def test_specs_run_every_kind_per_class_rotate_stamps_and_deal_backgrounds_evenly(tiny_world):
    split_pool = pool(tiny_world.stamps(), tiny_world.photos(), "tuning")
    specs = scene_specs(split_pool, seed=0)
    assert len(specs) == 3 * len(KIND_RUN)
    for class_id in split_pool.stamps_by_class:
        assert tuple(s.kind for s in specs if s.class_id == class_id) == KIND_RUN
    uses = Counter(s.background.name for s in specs)
    assert set(uses) == {"sky", "grass"} and max(uses.values()) - min(uses.values()) <= 1
    assert all(s.target_stamps[0].class_id == s.class_id for s in specs)
    assert [s.index for s in specs] == list(range(len(specs)))
    assert scene_specs(split_pool, seed=0) == specs
    assert {s.class_id for s in split_pool.distractors_for(84)} == {9, 950}


def test_the_committed_splits_share_nothing_and_have_the_promised_size():
    stamps, backgrounds = load_catalogue(), load_backgrounds()
    pools = {split: pool(stamps, backgrounds, split) for split in SPLITS}
    tuning, heldout = pools["tuning"], pools["heldout"]
    assert not {s.path for c in tuning.stamps_by_class.values() for s in c} & {
        s.path for c in heldout.stamps_by_class.values() for s in c}
    assert not {(b.source, b.file) for b in tuning.backgrounds} & {(b.source, b.file) for b in heldout.backgrounds}
    specs = {split: scene_specs(pools[split], seed=0) for split in SPLITS}
    assert sum(len(s) for s in specs.values()) >= 600
    assert len(set(tuning.stamps_by_class) | set(heldout.stamps_by_class)) >= 40
    assert len(heldout.stamps_by_class) >= 40 and len(specs["heldout"]) >= 300
    assert sum(s.kind != SINGLE for s in specs["heldout"]) >= 0.4 * len(specs["heldout"])
    assert len(tuning.backgrounds) + len(heldout.backgrounds) >= 30
    assert len(set(tuning.stamps_by_class) & set(heldout.stamps_by_class)) >= 5  # classes seen via other stamps


def test_an_unknown_split_is_refused(tiny_world):
    with pytest.raises(CompositeError, match="unknown split 'test'"):
        pool(tiny_world.stamps(), tiny_world.photos(), "test")
