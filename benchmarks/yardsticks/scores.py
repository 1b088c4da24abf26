"""Each recipe's labels on one yardstick, scored per image, so that differences can be bootstrapped."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from benchmarks.yardsticks.bootstrap import dataset_miou, mean_of_images
from benchmarks.yardsticks.recipes import fuse_section
from benchmarks.yardsticks.settings import RecipeSection, YardstickSection
from core.store import open_store, store_explainers, store_models
from pipeline import label_quality

COUNT_KEYS = ("inter_as_bg", "union_as_bg", "bg_inter_as_bg", "bg_union_as_bg")
STATISTICS = {"mean_fg_iou": mean_of_images, "dataset_miou": dataset_miou}
MULTI_OBJECT = "multi-object"
SINGLE_OBJECT = "single-object"


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


def score_recipe(stick: YardstickSection, recipe: RecipeSection) -> Scored:
    group = open_store(stick.store, mode="r")
    fuse = fuse_section(recipe, store_models(group), store_explainers(group))
    summary = label_quality.variant_scores(stick.store, stick.ground_truth, {"fuse": fuse}, stick.encoding)
    images = sorted(summary["counts"])
    if stick.score == "dataset_miou":
        rows = np.array([[summary["counts"][name][key] for key in COUNT_KEYS] for name in images], np.float64)
    else:
        rows = np.array([summary["per_image"][name]["iou_as_bg"] for name in images], np.float64)
    return Scored(images, rows, float(summary["mean"]["ignore_fraction"]))


def scene_groups(stick: YardstickSection) -> dict[str, list[str]]:
    """The composite world's images by kind: single-object scenes and the rest (several objects), by file name."""
    if stick.scenes is None:
        return {}
    scenes = json.loads(Path(stick.scenes).read_text())["images"]
    groups: dict[str, list[str]] = {SINGLE_OBJECT: [], MULTI_OBJECT: []}
    for scene in scenes:
        groups[SINGLE_OBJECT if scene["kind"] == "single" else MULTI_OBJECT].append(PurePosixPath(scene["image"]).name)
    return groups
