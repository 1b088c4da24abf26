"""The two splits and the list of scenes each holds.

Tuning and held-out share no stamp file and no background photo (checked here, not trusted to the tables).
Each class of a split gets the same run of scene kinds, so every class is seen alone and in company; its
scenes rotate through the class's stamps in that split, and the split's backgrounds are dealt out in a
seeded order so that each photo backs about as many scenes as any other.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from benchmarks.composite.backgrounds import Background
from benchmarks.composite.catalogue import Stamp
from benchmarks.composite.tables import SPLITS, CompositeError

SINGLE, BESIDE, BEHIND, IN_FRONT, SEVERAL = "single", "beside", "behind", "in_front", "several"
KINDS = (SINGLE, BESIDE, BEHIND, IN_FRONT, SEVERAL)
# per class and split: 4 single-object scenes and 5 with other objects or several instances
KIND_RUN = (SINGLE, SINGLE, SINGLE, SINGLE, BESIDE, BEHIND, IN_FRONT, SEVERAL, SEVERAL)


@dataclass(frozen=True)
class Pool:
    """What one split may draw from."""
    split: str
    stamps_by_class: dict[int, tuple[Stamp, ...]]
    backgrounds: tuple[Background, ...]

    def distractors_for(self, class_id: int) -> tuple[Stamp, ...]:
        return tuple(s for c, stamps in sorted(self.stamps_by_class.items()) if c != class_id for s in stamps)


@dataclass(frozen=True)
class SceneSpec:
    """One scene to make: its target class, kind, the class's stamps starting with this scene's first
    instance, and its background. The scene's own random draws (sizes, places, distractors) come later."""
    split: str
    index: int
    class_id: int
    class_name: str
    kind: str
    target_stamps: tuple[Stamp, ...]
    background: Background

    @property
    def stem(self) -> str:
        slug = "".join(ch if ch.isalnum() else "_" for ch in self.class_name.lower())
        return f"{self.split}_{self.index:04d}_{slug}"


def check_disjoint(stamps: list[Stamp], backgrounds: list[Background]) -> None:
    """No stamp file and no background photo may serve both splits."""
    for what, items in (("stamp", [(s.path, s.split) for s in stamps]),
                        ("background photo", [(f"{b.source}:{b.file}", b.split) for b in backgrounds])):
        splits_of = defaultdict(set)
        for name, split in items:
            splits_of[name].add(split)
        shared = sorted(name for name, splits in splits_of.items() if len(splits) > 1)
        if shared:
            raise CompositeError(f"{what} in both splits: {', '.join(shared)}")


def pool(stamps: list[Stamp], backgrounds: list[Background], split: str) -> Pool:
    if split not in SPLITS:
        raise CompositeError(f"unknown split {split!r} (use {', '.join(SPLITS)})")
    check_disjoint(stamps, backgrounds)
    by_class: dict[int, list[Stamp]] = defaultdict(list)
    for stamp in stamps:
        if stamp.split == split:
            by_class[stamp.class_id].append(stamp)
    chosen = tuple(b for b in backgrounds if b.split == split)
    if len(by_class) < 2 or not chosen:
        raise CompositeError(f"split {split} needs stamps of at least two classes and a background; it has "
                             f"{len(by_class)} classes and {len(chosen)} backgrounds")
    return Pool(split, {c: tuple(s) for c, s in sorted(by_class.items())}, chosen)


def scene_specs(split_pool: Pool, seed: int) -> list[SceneSpec]:
    """Every scene of the split, in a fixed order: class by class (ascending id), KIND_RUN for each."""
    order = np.random.default_rng([seed, SPLITS.index(split_pool.split)]).permutation(len(split_pool.backgrounds))
    specs = []
    for class_id, stamps in split_pool.stamps_by_class.items():
        for k, kind in enumerate(KIND_RUN):
            index = len(specs)
            rotated = stamps[k % len(stamps):] + stamps[:k % len(stamps)]
            background = split_pool.backgrounds[order[index % len(order)]]
            specs.append(SceneSpec(split_pool.split, index, class_id, stamps[0].class_name, kind, rotated, background))
    return specs
