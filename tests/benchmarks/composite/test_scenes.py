"""Scenes: the same seed makes the same scene, each kind puts its objects where it says, and the mask is the
target's visible pixels."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.composite.backgrounds import load_photo
from benchmarks.composite.catalogue import load_cutout
from benchmarks.composite.cutouts import Look, opaque, prepare
from benchmarks.composite.scenes import OCCLUDED, make_scene
from benchmarks.composite.splits import BEHIND, BESIDE, IN_FRONT, KINDS, SEVERAL, SINGLE, pool, scene_specs


def scenes_of(world, split="tuning", seed=0):
    split_pool = pool(world.stamps(), world.photos(), split)
    by_name = {b.name: b for b in split_pool.backgrounds}

    def make(spec):
        return make_scene(spec, seed, split_pool.distractors_for(spec.class_id),
                          lambda path: load_cutout(world.stamp_folder, path),
                          lambda name: load_photo(by_name[name], world.photo_folder))
    return scene_specs(split_pool, seed), make


def test_the_same_seed_makes_the_same_scene_and_another_index_another(tiny_world):
    specs, make = scenes_of(tiny_world)
    first, again, other = make(specs[0]), make(specs[0]), make(specs[1])
    assert np.array_equal(first.image, again.image) and np.array_equal(first.mask, again.mask)
    assert first.record == again.record
    assert not np.array_equal(first.image[:20, :20], other.image[:20, :20])


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_places_its_objects_and_the_mask_is_the_visible_target(tiny_world, kind):
    specs, make = scenes_of(tiny_world)
    for spec in [s for s in specs if s.kind == kind]:
        scene = make(spec)
        record = scene.record
        width, height = record["size"]
        assert scene.image.shape == (height, width, 3) and scene.mask.shape == (height, width)
        assert 320 <= min(width, height) and max(width, height) <= 512
        targets = [o for o in record["objects"] if o["role"] == "target"]
        others = [o for o in record["objects"] if o["role"] == "distractor"]
        assert all(o["class_id"] == spec.class_id for o in targets)
        assert all(o["class_id"] != spec.class_id for o in others)
        assert [o["depth"] for o in record["objects"]] == list(range(len(record["objects"])))
        for o in record["objects"]:
            left, top, right, bottom = o["box"]
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
        inside = np.zeros_like(scene.mask, bool)
        for o in targets:
            left, top, right, bottom = o["box"]
            inside[top:bottom, left:right] = True
        assert scene.mask.any() and not scene.mask[~inside].any()  # no mask pixel outside a target's box
        assert record["target_pixels"] == int(scene.mask.sum())
        if kind == SINGLE:
            assert len(targets) == 1 and not others and targets[0]["visible"] == 1.0
        elif kind == BESIDE:
            assert len(targets) == 1 and len(others) == 1 and targets[0]["visible"] == 1.0
        elif kind == BEHIND:
            assert record["objects"][1]["role"] == "distractor"
            assert 1 - OCCLUDED[1] - 0.01 <= targets[0]["visible"] <= 1 - OCCLUDED[0] + 0.01
        elif kind == IN_FRONT:
            assert record["objects"][1]["role"] == "target" and targets[0]["visible"] == 1.0
            assert others[0]["visible"] < 1.0
        elif kind == SEVERAL:
            assert 2 <= len(targets) <= 4 and len(others) <= 1


def test_the_mask_of_an_unoccluded_object_is_exactly_its_pasted_alpha(tiny_world):
    specs, make = scenes_of(tiny_world)
    for spec in [s for s in specs if s.kind in (SINGLE, BESIDE)]:
        scene = make(spec)
        target = next(o for o in scene.record["objects"] if o["role"] == "target")
        look = Look(target["scale"], target["flip"], target["brightness"], target["contrast"])
        pasted = prepare(load_cutout(tiny_world.stamp_folder, target["stamp"]), look)
        left, top, right, bottom = target["box"]
        assert pasted.shape[:2] == (bottom - top, right - left)
        expected = np.zeros_like(scene.mask)
        expected[top:bottom, left:right] = opaque(pasted)
        assert np.array_equal(scene.mask, expected)
