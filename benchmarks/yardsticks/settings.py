"""The yardsticks benchmark's config (conf/yardsticks.yaml): where each yardstick's store and ground truth are,
and the recipes to score. Declared here, beside the benchmark, so core/ knows nothing of benchmarks."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, NonNegativeInt

from core.schema import Section


class YardstickSection(Section):
    store: str
    ground_truth: str
    encoding: Literal["voc", "binary01", "binary255", "imagenet-s"] = "binary01"
    score: Literal["mean_fg_iou", "dataset_miou"] = "mean_fg_iou"  # what the yardstick is judged by
    tuned_on: bool = False  # choices were made looking at it: its numbers are optimistic
    scenes: str | None = None  # a composite world's scenes.json: its single- and multi-object images apart


class RecipeSection(Section):
    name: str
    models: NonNegativeInt | None = None  # the first k of the store's models (cheapest first); null: all
    explainers: list[str] | None = None  # null: every explainer of the store
    fuse: dict[str, Any] = {}  # the fuse section (core/schema.py FuseSection keys), beside the members above


class YardsticksConfig(Section):
    base: str = "conf/sample.yaml"  # the pipeline config a recipe changes (its explainers' settings, for the plan)
    yardsticks: dict[str, YardstickSection] = Field(min_length=1)
    recipes: list[RecipeSection] = Field(min_length=1)
    baseline: str  # the recipe every other is compared with
    resamples: NonNegativeInt = 2000
    out: str = "results/yardsticks.md"
