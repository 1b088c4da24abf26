"""A recipe as what it costs and what it writes: its pipeline config (for `pipeline plan`) and, on a given
store, the fuse section that makes its labels from that store's maps."""
from __future__ import annotations

from dataclasses import dataclass

from benchmarks.yardsticks.settings import RecipeSection
from core.config import typed
from core.schema import PipelineConfig
from core.store import OBJECTNESS
from pipeline import plan


@dataclass(frozen=True)
class Cost:
    """Per image: network passes at the classifier's input size (forward, backward) and device milliseconds as
    `pipeline plan` counts them, the object model's pass apart."""
    forwards: float
    backwards: float
    milliseconds: float
    object_model: bool

    @property
    def passes(self) -> float:
        return self.forwards + self.backwards


def uses_object_model(recipe: RecipeSection) -> bool:
    return recipe.fuse.get("combine", "object_regions") != "none"


def pipeline_config(recipe: RecipeSection, base: PipelineConfig) -> PipelineConfig:
    """The config that runs this recipe: the base's first `models`, the chosen explainers with the base's
    settings, the object model only where the fuse rule reads it, the recipe's fuse section."""
    dump = base.model_dump()
    explain = dump["explain"]
    if recipe.models is not None:
        explain["models"] = explain["models"][:recipe.models]
    if recipe.explainers is not None:
        explain["explainers"] = {name: explain["explainers"][name] for name in recipe.explainers}
    if not uses_object_model(recipe):
        explain["objectness"] = None
    dump["fuse"] = {**dump["fuse"], **recipe.fuse}
    return typed(dump, PipelineConfig)


def cost(recipe: RecipeSection, base: PipelineConfig) -> Cost:
    made = plan.make_plan(pipeline_config(recipe, base), images=1)
    classifier_rows = [r for r in made.rows if r.explainer != OBJECTNESS]
    return Cost(sum(r.passes.forwards for r in classifier_rows), sum(r.passes.backwards for r in classifier_rows),
                1000 * sum(r.seconds_per_image for r in made.rows), len(classifier_rows) < len(made.rows))


def fuse_section(recipe: RecipeSection, models: list[str], explainers: list[str]) -> dict:
    """The fuse section that makes the recipe's labels from a store holding `models` x `explainers`."""
    chosen = list(recipe.explainers or explainers)
    missing = sorted(set(chosen) - set(explainers))
    if missing:
        raise ValueError(f"recipe {recipe.name!r}: the store has no {missing} maps")
    return {**recipe.fuse, "models": models[:recipe.models] if recipe.models is not None else None,
            "explainers": chosen}
