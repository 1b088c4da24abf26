"""Fuse stage: turn the stored explanations of every (model, explainer) member into PSSL labels.

The rule itself is `pipeline.fuse.rules.fuse_image` (docs/fusion.md); this module checks the fuse
settings against the store, reads each image's member maps with the q99 the explain stage stored,
and writes the labels. `fuse_shards` fuses a list of shards of a store path, one dask thread per
shard, each the only writer of its shard's files; the driver (`run`) sets a batch's flags after its
write, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np
import zarr

from core.config import ConfigError, recorded, typed
from core.errors import brief, listed
from core.images import image_at_map_size
from core.schema import FuseRule, FuseSection, PipelineConfig
from core.store import (CONSENSUS, EXPLAIN_STAGE, FUSE_KEY, FUSE_STAGE, IGNORE, INDEX_STATUS, MASK, OBJECTNESS, STATUS_OK, WEIGHT,
                        StoreError, done_shards, fuse_settings, map_size, mark_done, n_images, open_store,
                        progress_name, q99_name, read_flags, record_config, require_array, saliency_name, score_name,
                        shard_count, shard_size, store_explainers, store_models, store_objectness, write_layout)
from core.store_check import (clear_flags, damaged_flagged, damaged_shards, discard_damaged, repair_command,
                              report_redone)
from pipeline import disk_space
from pipeline.fuse import cluster as fuse_cluster
from pipeline.fuse import labels_only
from pipeline.fuse.rules import FusedImage, fuse_image, needs_image, needs_objectness, rule_registries, unlabelled
from pipeline.maps.stored import StoredMaps

LABEL_CODEC = zarr.codecs.ZstdCodec(level=1)


class FuseConfigError(ConfigError):
    """A fuse config that cannot be used, or that differs from the one the store was fused with."""


@dataclass(frozen=True)
class FusePlan:
    """What the labels of a store are made of: the members, in order, and the rule."""
    members: tuple[tuple[str, str], ...]
    rule: FuseRule

    @property
    def explainers(self) -> list[str]:
        return [e for _, e in self.members]

    def recorded(self) -> dict:
        """The store's `fuse` attribute: what a re-run is compared with."""
        return {"members": [list(m) for m in self.members], **self.rule.model_dump()}

    @classmethod
    def from_recorded(cls, recorded: dict) -> FusePlan:
        rule = {k: v for k, v in recorded.items() if k in FuseRule.model_fields}
        return cls(tuple(tuple(m) for m in recorded["members"]), FuseRule.model_validate(rule))


def pipeline_config(config: PipelineConfig | dict) -> PipelineConfig:
    """The validated config (a dict is checked first, fuse rule names against pipeline.fuse.rules' registries)."""
    return typed(config, PipelineConfig, rule_registries())


def plan_for(section: FuseSection, group: zarr.Group, made: tuple[list[str], list[str]] | None = None) -> FusePlan:
    """The members the section names (all of the store's by default) and its rule, checked against the store
    (or against the `made` (models, explainers) an explain stage of the same run will record)."""
    known_models, known_explainers = made or (store_models(group), store_explainers(group))
    models = section.models or known_models
    explainers = section.explainers or known_explainers
    for kind, chosen, known in (("model", models, known_models), ("explainer", explainers, known_explainers)):
        if not chosen:
            raise FuseConfigError(f"fuse: no {kind}s to fuse (store attrs list none; run explain first)")
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise FuseConfigError(f"fuse.{kind}s: {unknown} not in the store (it has {known})")
    unknown = sorted(set(section.smooth) - set(known_explainers))
    if unknown:
        raise FuseConfigError(f"fuse.smooth maps explainers of the store {known_explainers} to a Gaussian sigma, "
                              f"got {unknown}")
    return FusePlan(tuple((m, e) for m in models for e in explainers), _with_object_model(section.rule(), group, made is None))


def _with_object_model(rule: FuseRule, group: zarr.Group, check: bool = True) -> FuseRule:
    """A combination rule with the object model whose maps it reads made explicit (the store's by default);
    `check` False: an explain stage of the same run is still to make them."""
    if not needs_objectness(rule):
        return rule
    name = rule.objectness.model or store_objectness(group)
    if not check and (not name or saliency_name(name, OBJECTNESS) not in group):
        return rule
    if not name or saliency_name(name, OBJECTNESS) not in group:
        raise FuseConfigError(f"fuse.combine={rule.combine} needs an object map and the store has none"
                              f"{f' of {name!r}' if name else ''}: set explain.objectness (`make objectness-model`) "
                              "and run explain again, or fuse.combine=none")
    return rule.model_copy(update={"objectness": rule.objectness.model_copy(update={"model": name})})


def object_model(plan: FusePlan) -> str | None:
    """The object model whose maps the plan's rule reads (None without a combination rule)."""
    return plan.rule.objectness.model if needs_objectness(plan.rule) else None


def recorded_plan(group: zarr.Group) -> FusePlan | None:
    """The plan the store's labels were made with (None before any fuse run)."""
    recorded = fuse_settings(group)
    return FusePlan.from_recorded(recorded) if recorded else None


def stored_q99(group: zarr.Group, members, rows: slice = slice(None)) -> np.ndarray:
    """float32 [M, rows]: each member map's q99 as the explain stage stored it; NaN where not stored
    (a store upgraded from format 1), which the kernel then computes."""
    return np.stack([np.asarray(group[q99_name(m, e)][rows], np.float32) for m, e in members])


def member_probabilities(group: zarr.Group, members, rows: slice) -> np.ndarray:
    """float32 [M, rows]: each member's model's probability of the target class."""
    return np.stack([np.asarray(group[score_name(m)][rows], np.float32) for m, _ in members])


def fuse_rows(group: zarr.Group, plan: FusePlan, rows: slice) -> list[FusedImage]:
    """The labels of images rows.start .. rows.stop - 1 of the store, as the fuse stage writes them."""
    members = plan.members
    maps = np.stack([StoredMaps(group, m, e)[rows] for m, e in members], axis=1)
    q99 = stored_q99(group, members, rows)
    probabilities = member_probabilities(group, members, rows) if plan.rule.weight_by_probability else None
    ok = np.asarray(group[INDEX_STATUS][rows]) == STATUS_OK
    objects = object_model(plan)
    object_maps = StoredMaps(group, objects, OBJECTNESS)[rows].astype(np.float32) if objects else None
    size = map_size(group)
    fused = []
    for i, index in enumerate(range(rows.start, rows.start + len(ok))):
        if not ok[i]:
            fused.append(unlabelled(size))
            continue
        image = image_at_map_size(group, index) if needs_image(plan.rule) else None
        fused.append(fuse_image(maps[i], q99[:, i], plan.explainers, plan.rule,
                                None if probabilities is None else probabilities[:, i], image=image,
                                objectness=None if object_maps is None else object_maps[i]))
    return fused


def image_consensus(group: zarr.Group, index: int) -> np.ndarray:
    """float32 [S, S]: one fused image's consensus, read when stored, else recomputed as the fuse run made it."""
    if CONSENSUS in group:
        return group[CONSENSUS][index].astype(np.float32)
    return fuse_rows(group, recorded_plan(group), slice(index, index + 1))[0].consensus.astype(np.float32)


def fuse_shard(group: zarr.Group, plan: FusePlan, shard: int) -> None:
    """Fuse and write one shard's labels (the shard files' only writer; the flag is the driver's)."""
    k, n = shard_size(group), n_images(group)
    rows = slice(shard * k, min((shard + 1) * k, n))
    fused = fuse_rows(group, plan, rows)
    group[MASK][rows] = np.stack([f.mask for f in fused])
    group[WEIGHT][rows] = np.stack([f.weight for f in fused])
    if plan.rule.write_consensus:
        group[CONSENSUS][rows] = np.stack([f.consensus for f in fused]).astype(np.float16)


def fuse_shards(store_path: str | Path, plan: FusePlan, shards: list[int], num_workers: int = 1) -> None:
    """Fuse these shards of the store at `store_path` (its label arrays exist), `num_workers` at a time."""
    group = open_store(store_path)
    tasks = [dask.delayed(fuse_shard)(group, plan, shard) for shard in shards]
    dask.compute(*tasks, scheduler="threads", num_workers=num_workers)


def _runs(shards: list[int], limit: int) -> list[tuple[int, int]]:
    """Split sorted shard numbers into contiguous [first, last+1) runs of at most `limit` shards."""
    runs: list[tuple[int, int]] = []
    for shard in shards:
        if runs and runs[-1][1] == shard and runs[-1][1] - runs[-1][0] < limit:
            runs[-1] = (runs[-1][0], shard + 1)
        else:
            runs.append((shard, shard + 1))
    return runs


def check_accepted(config: PipelineConfig | dict, group: zarr.Group, made: tuple[list[str], list[str]] | None = None) -> bool:
    """Refuse a fuse config that differs from the one the store was fused with, unless fuse.overwrite
    is set; True when the old labels are to be replaced. Writes nothing, so it can run before any stage."""
    section = pipeline_config(config).fuse
    previous = recorded_plan(group)
    if previous is None:
        return False
    old, wanted = previous.recorded(), plan_for(section, group, made).recorded()
    if old == wanted:
        return False
    labels_only.refuse_refusing(group, n_images(group), shard_size(group), range(shard_count(n_images(group),
                                shard_size(group))), "the fuse config differs from the one its labels were made with")
    if not section.overwrite:
        changed = listed([_change(k, old.get(k), wanted[k]) for k in wanted if old.get(k) != wanted[k]], 80)
        raise FuseConfigError(f"store was fused with another fuse config ({changed}); "
                              "set fuse.overwrite=true to replace its labels, or use a new run")
    return True


def _change(key: str, old, new) -> str:
    """One changed label key, short: a member list by its count and what it gains or loses."""
    if key != "members":
        return f"fuse.{key}: {brief(old)} -> {brief(new)}"
    before, after = {tuple(m) for m in old or []}, {tuple(m) for m in new}
    moved = [f"-{'/'.join(m)}" for m in sorted(before - after)] + [f"+{'/'.join(m)}" for m in sorted(after - before)]
    return f"members: {len(before)} -> {len(after)} ({', '.join(moved[:2])}{', ...' if len(moved) > 2 else ''})"


def _forget_labels(group: zarr.Group, write_consensus: bool, n_shards: int) -> None:
    """Before an accepted overwrite: every fuse flag off, and the consensus gone if no longer wanted."""
    if progress_name(FUSE_STAGE, FUSE_KEY) in group:
        group[progress_name(FUSE_STAGE, FUSE_KEY)][:] = np.zeros(n_shards, bool)
    if not write_consensus and CONSENSUS in group:
        del group[CONSENSUS]


def _refuse_damaged_inputs(group: zarr.Group, store_path: str | Path, members: list[tuple[str, str]],
                           weighted: bool, todo: list[int], k: int, n: int, objects: str | None = None) -> None:
    """Maps of a missing or damaged shard would read as zeros and make wrong labels: stop and say how to repair."""
    names = [f(m, e) for m, e in [*members, *([(objects, OBJECTNESS)] if objects else [])]
             for f in (saliency_name, q99_name)]
    names += [score_name(m) for m in dict.fromkeys(m for m, _ in members)] if weighted else []
    damaged = {**damaged_shards(store_path, group, names, todo, k, n),
               **damaged_shards(store_path, group, [INDEX_STATUS], range(shard_count(n, k)), k, n)}
    if damaged:
        raise StoreError(f"fuse: {damaged[min(damaged)][0]} ({len(damaged)} damaged shard(s)); "
                         f"{repair_command(store_path)}")


def _output_arrays(group: zarr.Group, n: int, s: int, write_consensus: bool) -> list[zarr.Array]:
    """Create (or reopen) the label arrays.

    zstd level 1 instead of zarr's default 3: faster and no larger on weight maps (docs/fusion.md, "Measured").
    """
    specs = [(MASK, np.uint8, IGNORE), (WEIGHT, np.uint8, 0)]
    if write_consensus:
        specs.append((CONSENSUS, np.float16, np.nan))
    return [require_array(group, name, (n, s, s), dtype, (s, s), fill_value=fill, compressors=LABEL_CODEC)
            for name, dtype, fill in specs]


def run(config: PipelineConfig | dict, store_path: str | Path) -> dict:
    """Fuse every shard whose explanations are complete and whose labels are not yet written."""
    started = time.perf_counter()
    group = open_store(store_path)
    config = pipeline_config(config)
    section = config.fuse
    plan = plan_for(section, group)
    n, k = n_images(group), shard_size(group)
    s = map_size(group)
    n_shards = shard_count(n, k)
    members = list(plan.members)
    weighted = plan.rule.weight_by_probability
    for model, explainer in members:
        if saliency_name(model, explainer) not in group:
            raise StoreError(f"fuse: {saliency_name(model, explainer)} is missing from {store_path}")
    models = list(dict.fromkeys(m for m, _ in members))
    if weighted:
        for model in models:
            if score_name(model) not in group:
                raise StoreError(f"fuse.weight_by_probability: {score_name(model)} is missing from {store_path}")

    replace = check_accepted(config, group)
    damaged = {} if replace else damaged_flagged(store_path, group, [(FUSE_STAGE, FUSE_KEY)],
                                                 [MASK, WEIGHT, CONSENSUS], k, n)
    done = np.zeros(n_shards, bool) if replace else read_flags(group, FUSE_STAGE, FUSE_KEY, n_shards)
    missing = [name for name in (MASK, WEIGHT) if name not in group]
    if missing:  # a label array deleted (as a damaged zarr.json's advice says): every flagged shard is redone
        damaged.update({int(shard): [f"{missing[0]} is missing"] for shard in np.flatnonzero(done)})
    labels_only.refuse_refusing(group, n, k, damaged, "damaged labels need their maps to be fused again")
    done[list(damaged)] = False
    keep_maps = config.store.keep_maps
    if not keep_maps:
        labels_only.drop_maps(store_path, group, labels_only.fused_not_pruned(group, done, n, k), k, n)
    objects = object_model(plan)
    explained = np.logical_and.reduce([read_flags(group, EXPLAIN_STAGE, m, n_shards)
                                       for m in models + ([objects] if objects else [])])
    todo = [int(i) for i in np.flatnonzero(explained & ~done)]
    _refuse_damaged_inputs(group, store_path, members, weighted, todo, k, n, objects)
    arrays = 3 if plan.rule.write_consensus else 2
    disk_space.check(Path(store_path).parent, disk_space.label_bytes(min(len(todo) * k, n), arrays, s), FUSE_STAGE)

    report_redone(FUSE_STAGE, damaged)
    discard_damaged(store_path, group, [MASK, WEIGHT, CONSENSUS], list(damaged), k, n)
    clear_flags(group, [(FUSE_STAGE, FUSE_KEY)], list(damaged))
    if replace:
        _forget_labels(group, plan.rule.write_consensus, n_shards)
    _output_arrays(group, n, s, plan.rule.write_consensus)
    write_layout(group, fuse=plan.recorded())
    record_config(group, store_path, recorded(config))
    done_shards(group, FUSE_STAGE, FUSE_KEY, n_shards)  # creates the flags on a first run

    workers = section.num_workers or os.cpu_count() or 1
    nodes = Counter()
    runs = _runs(todo, section.shards_per_batch or fuse_cluster.run_length(config, workers))
    for first, last in fuse_cluster.fused_runs(config, fuse_shards, store_path, plan, runs, workers, nodes):
        for shard in range(first, last):
            mark_done(group, FUSE_STAGE, FUSE_KEY, shard)
        if not keep_maps:
            labels_only.drop_maps(store_path, group, range(first, last), k, n)

    waiting = int((~explained & ~done).sum())
    return {
        "members": [f"{m}/{e}" for m, e in members],
        "shards_total": n_shards,
        "shards_fused": len(todo),
        "shards_already_done": int(done.sum()),
        "shards_waiting_for_explain": waiting,
        "images_fused": int(sum(min((i + 1) * k, n) - i * k for i in todo)),
        "maps_kept": keep_maps,
        "shards_per_node": dict(nodes),  # a cluster run (ray.address): which Ray node fused how many shards
        "seconds": round(time.perf_counter() - started, 3),
    }
