"""What a store's maps were made with, and a run whose settings would change them on shards already done.

Explain flags a shard done once its maps are written and a re-run skips it, so a changed explainer
parameter, model, seed or encoding would be recorded over maps made otherwise, and fused into labels
that claim settings they were not made with. The settings that shape the maps are therefore recorded
in the store (`recorded_map_settings`), and a run that differs on a model with done shards is refused
in one line naming the keys, or, with explain.overwrite=true, redone: that model's maps and the labels
made from them are forgotten first.
"""
from __future__ import annotations

from pathlib import PurePath

import zarr

from pydantic import ValidationError

from core.config import ConfigError, typed
from core.errors import brief, listed
from core.schema import PipelineConfig
from core.store import (CLASSIFY_STAGE, EXPLAIN_STAGE, is_indexed, n_images, read_flags, recorded_map_settings,
                        shard_count, shard_size, store_models)
from pipeline.explain.classifiers import model_specs

CHANGES_WIDTH = 80  # characters of changed keys a refusal shows before counting the rest (one short line)


class ExplainConfigError(ConfigError):
    """Explain settings that differ from the ones the store's finished maps were made with."""


def map_settings(config: PipelineConfig) -> dict:
    """The settings that shape the stored maps (not how fast they are made), keyed as in the config."""
    explain, store = config.explain, config.store
    return {
        "explain.models": {spec["name"]: spec for spec in model_specs(explain)},
        "explain.explainers": {name: dict(params or {}) for name, params in explain.explainers.items()},
        "explain.seed": explain.seed,
        "explain.num_classes": explain.num_classes,
        "explain.autocast": explain.autocast,
        "store.compact": store.compact,
        "store.unit_levels": dict(store.unit_levels) if store.compact else None,
        "explain.objectness": object_model_settings(explain.objectness),
    }


def object_model_settings(section) -> dict:
    """{name: what shapes its maps} of the object model, {} without one. The model file by its name only: the
    same file lives at other paths on other machines."""
    if section is None:
        return {}
    return {section.name: {"model": PurePath(section.model).name, "input_size": section.input_size,
                           "mean": list(section.mean), "std": list(section.std)}}


def made_members(config: PipelineConfig) -> tuple[list[str], list[str]]:
    """(models, explainers) the explain stage records for fuse to choose members from."""
    return list(map_settings(config)["explain.models"]), list(config.explain.explainers)


def _recorded(group: zarr.Group) -> dict:
    """The store's recorded map settings; a store written before they were recorded: from its recorded config."""
    recorded = recorded_map_settings(group)
    if recorded:
        return recorded
    try:
        return map_settings(typed(group.attrs.get("config", {}), PipelineConfig))
    except (ConfigError, ValidationError, TypeError, AttributeError):  # no usable explain section: nothing to compare against
        return {}


def _flat(value, prefix: str) -> dict:
    if isinstance(value, dict) and value:
        return {key: leaf for name, child in value.items() for key, leaf in _flat(child, f"{prefix}.{name}").items()}
    return {prefix: value}


def _changes(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for each flat key whose value differs."""
    return [f"{key}: {brief(old.get(key))} -> {brief(new.get(key))}" for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)]


def explained_models(group: zarr.Group) -> list[str]:
    """Models with at least one shard flagged classified or explained."""
    if not is_indexed(group):
        return []
    n_shards = shard_count(n_images(group), shard_size(group))
    recorded = list(_recorded(group).get("explain.models", {}))
    return [model for model in dict.fromkeys(store_models(group) + recorded)
            if any(read_flags(group, stage, model, n_shards).any() for stage in (CLASSIFY_STAGE, EXPLAIN_STAGE))]


def changed_models(config: PipelineConfig, group: zarr.Group) -> tuple[list[str], list[str]]:
    """(models whose done maps the config would change, one 'key: old -> new' per changed setting)."""
    done = explained_models(group)
    old = _recorded(group)
    if not done or not old:
        return [], []
    new = map_settings(config)
    members = ("explain.models", "explain.objectness")  # compared per member: only a member with done maps counts
    shared = _changes(*({key: leaf for section, value in settings.items() if section not in members
                         for key, leaf in _flat(value, section).items()} for settings in (old, new)))
    models = set(done) if shared else set()
    changes = list(shared)
    for model in done:
        was, wanted = old.get("explain.models", {}).get(model), new["explain.models"].get(model)
        if wanted is None:
            changes.append(f"explain.models: drops {model}")
            models.add(model)
        elif was is not None and was != wanted:
            prefix = f"explain.models.{model}"
            changes += _changes(_flat(was, prefix), _flat(wanted, prefix))
            models.add(model)
    for name, was in old.get("explain.objectness", {}).items():  # older stores did not record it: nothing to compare
        wanted = new["explain.objectness"].get(name)
        if wanted is not None and was != wanted and _object_maps_done(group, name):
            prefix = f"explain.objectness.{name}"
            changes += _changes(_flat(was, prefix), _flat(wanted, prefix))
            models.add(name)
    return sorted(models), changes


def _object_maps_done(group: zarr.Group, name: str) -> bool:
    return bool(read_flags(group, EXPLAIN_STAGE, name, shard_count(n_images(group), shard_size(group))).any())


def check_accepted(config: PipelineConfig, group: zarr.Group) -> list[str]:
    """Refuse settings that would change finished maps, unless explain.overwrite is set; returns the models
    whose maps are to be redone. Writes nothing, so it can run before any stage."""
    models, changes = changed_models(config, group)
    if models and not config.explain.overwrite:
        raise ExplainConfigError(f"finished maps were made with other settings ({listed(changes, CHANGES_WIDTH)}); "
                                 "explain.overwrite=true redoes them, or use a new run (run.name=...)")
    return models
