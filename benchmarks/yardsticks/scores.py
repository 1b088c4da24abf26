"""Each recipe's labels on one yardstick, scored per image, so that differences can be bootstrapped.

A yardstick's inputs (every member's stored map, its q99, the photo and the object map at the map size, the
ground truth) are read once; each recipe then only runs the fuse rule (`pipeline.fuse.rules.fuse_image`, what
the fuse stage writes) on the members it chooses, on two threads (the rule's kernels release the GIL).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from benchmarks.yardsticks.bootstrap import dataset_miou, mean_of_images
from benchmarks.yardsticks.recipes import fuse_section
from benchmarks.yardsticks.settings import RecipeSection, YardstickSection
from core.images import image_at_map_size
from core.store import (INDEX_PATH, INDEX_STATUS, OBJECTNESS, STATUS_OK, map_size, open_store, store_explainers,
                        store_models, store_objectness)
from pipeline import label_quality
from pipeline.fuse.rules import fuse_image
from pipeline.fuse.stage import member_probabilities, pipeline_config, plan_for, stored_q99
from pipeline.maps.stored import StoredMaps

COUNT_KEYS = ("inter_as_bg", "union_as_bg", "bg_inter_as_bg", "bg_union_as_bg")
STATISTICS = {"mean_fg_iou": mean_of_images, "dataset_miou": dataset_miou}
MULTI_OBJECT = "multi-object"
SINGLE_OBJECT = "single-object"
THREADS = 2


@dataclass(frozen=True)
class Scored:
    """One recipe on one yardstick: per-image rows (what the yardstick's statistic reduces), by image name."""
    images: list[str]
    rows: np.ndarray  # [N] per-image fg IoU, or [N, 4] per-image counts (COUNT_KEYS)
    ignore: float  # mean ignore share of the labels

    def score(self, kind: str, among: list[str] | None = None) -> float:
        return STATISTICS[kind](self.rows if among is None else self.rows[self.positions(among)])

    def positions(self, among: list[str]) -> np.ndarray:
        where = {name: i for i, name in enumerate(self.images)}
        return np.array([where[name] for name in among if name in where], int)


class LoadedYardstick:
    """A yardstick's store read once: every labelled image's members' maps, q99, probabilities, photo, object map
    and ground truth, in memory."""

    def __init__(self, stick: YardstickSection):
        self.stick = stick
        self.group = open_store(stick.store, mode="r")
        self.models, self.explainers = store_models(self.group), store_explainers(self.group)
        self.members = [(m, e) for m in self.models for e in self.explainers]
        paths = [str(p) for p in self.group[INDEX_PATH][:]]
        status = np.asarray(self.group[INDEX_STATUS][:])
        truth = label_quality.load_ground_truth(stick.ground_truth, paths, map_size(self.group), stick.encoding)
        self.rows = [i for i in sorted(truth) if status[i] == STATUS_OK]
        self.names = [PurePosixPath(paths[i]).name for i in self.rows]
        self.truth = [truth[i] for i in self.rows]
        every = slice(None)
        stacks = [StoredMaps(self.group, m, e)[every] for m, e in self.members]
        self.maps = [np.stack([stack[i] for stack in stacks]) for i in self.rows]
        self.q99 = stored_q99(self.group, self.members, every)[:, self.rows]
        self.probabilities = member_probabilities(self.group, self.members, every)[:, self.rows]
        self.images = [image_at_map_size(self.group, i) for i in self.rows]
        objects = store_objectness(self.group)
        self.objectness = ([StoredMaps(self.group, objects, OBJECTNESS)[i].astype(np.float32) for i in self.rows]
                           if objects else None)

    def score(self, recipe: RecipeSection) -> Scored:
        section = fuse_section(recipe, self.models, self.explainers)
        plan = plan_for(pipeline_config({"fuse": section}).fuse, self.group)
        chosen = [self.members.index(member) for member in plan.members]
        weighted = plan.rule.weight_by_probability
        if plan.rule.combine != "none" and self.objectness is None:
            raise ValueError(f"recipe {recipe.name!r} needs object maps; {self.stick.store} has none")

        def one(k: int) -> dict:
            fused = fuse_image(self.maps[k][chosen], self.q99[chosen, k], plan.explainers, plan.rule,
                               self.probabilities[chosen, k] if weighted else None, image=self.images[k],
                               objectness=None if self.objectness is None else self.objectness[k])
            return label_quality.score_labels(fused.mask, self.truth[k])

        with ThreadPoolExecutor(THREADS) as pool:
            counts = list(pool.map(one, range(len(self.rows))))
        summary = label_quality.summarise_scores(dict(zip(self.names, counts)))
        if self.stick.score == "dataset_miou":
            rows = np.array([[c[key] for key in COUNT_KEYS] for c in counts], np.float64)
        else:
            rows = np.array([summary["per_image"][name]["iou_as_bg"] for name in self.names], np.float64)
        return Scored(self.names, rows, float(summary["mean"]["ignore_fraction"]))


def scene_groups(stick: YardstickSection) -> dict[str, list[str]]:
    """The composite world's images by kind: single-object scenes and the rest (several objects), by file name."""
    if stick.scenes is None:
        return {}
    scenes = json.loads(Path(stick.scenes).read_text())["images"]
    groups: dict[str, list[str]] = {SINGLE_OBJECT: [], MULTI_OBJECT: []}
    for scene in scenes:
        groups[SINGLE_OBJECT if scene["kind"] == "single" else MULTI_OBJECT].append(PurePosixPath(scene["image"]).name)
    return groups
