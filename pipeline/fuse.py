"""Fuse stage: turn the stored explanations of every (model, explainer) member into PSSL labels.

The rule (docs/fusion.md): each member's map is cut to its positive part and scaled by the image's
own 99th percentile, n = min(1, relu(map) / q99); the consensus c is the (optionally probability-
weighted) mean of n over members; c >= fg_threshold is foreground, c <= bg_threshold background, the
rest ignore. The weight of a decided pixel is the (same-weighted) fraction of members whose own n
votes for the mask's decision. With `fuse.combine`, a rule of pipeline/objectness_rules.py makes each
image's mask and weight from the consensus and the stored object map instead.

Work is blocked along images: dask reads whole shards (`chunks=a.shards`), one task fuses one shard
with the compiled kernel of `pipeline.fuse_kernel` and each map's q99 as the explain stage stored it,
and `da.store` writes it into pre-created arrays, so every shard file has exactly one writer.
Shards are fused in batches; a batch's fuse flags are set after its write, so an interrupted run
resumes where it stopped.
"""
from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr

from core.config import ConfigError, get
from core.images import image_at_map_size
from core.store import (BACKGROUND, CONSENSUS, EXPLAIN_STAGE, FOREGROUND, FUSE_KEY, FUSE_STAGE, IGNORE, INDEX_STATUS,
                        MASK, OBJECTNESS, STATUS_OK, WEIGHT, StoreError, done_shards, fuse_settings, map_size, mark_done,
                        n_images, open_store, progress_name, q99_name, read_flags, record_config, require_array,
                        saliency_name, score_name, shard_count, shard_size, store_explainers, store_models,
                        store_objectness, write_layout)
from core.store_check import (clear_flags, damaged_flagged, damaged_shards, discard_damaged, repair_command,
                              report_redone)
from pipeline.fuse_kernel import as_bits, fuse_pixels, normalise_rows, q99_of_maps
from pipeline.fuse_rules import REFINEMENTS, THRESHOLD_RULES, crf_consensus, image_thresholds, smooth_maps
from pipeline.objectness_rules import COMBINATION_RULES, OBJECT_DEFAULTS
from pipeline.stored_maps import StoredMaps

LABELS = np.dtype([("mask", "u1"), ("weight", "u1")])
FUSED = np.dtype(LABELS.descr + [("consensus", "f2")])
LABEL_CODEC = zarr.codecs.ZstdCodec(level=1)
# Keys that change the labels; the others (workers, batch size, overwrite) only change how fast.
LABEL_KEYS = ("members", "fg_threshold", "bg_threshold", "weight_by_probability", "write_consensus",
              "threshold_rule", "otsu_range", "smooth", "refine", "crf", "combine", "objectness")
# What a store fused before these keys existed was fused with (image_consensus reads old stores too).
RULE_DEFAULTS = {"threshold_rule": "fixed", "otsu_range": [0.0, 1.0], "smooth": {}, "refine": "none", "crf": None,
                 "combine": "none", "objectness": None}
CRF_KEYS = ("temperature", "iterations", "smooth_xy", "smooth_weight", "appearance_xy", "appearance_rgb",
            "appearance_weight")


class FuseConfigError(ConfigError):
    """A fuse config that cannot be used, or that differs from the one the store was fused with."""


def resolve_config(config: dict, group: zarr.Group) -> dict:
    """The fuse settings with members made explicit, checked against the store."""
    known_models, known_explainers = store_models(group), store_explainers(group)
    models = get(config, "fuse.models", None) or known_models
    explainers = get(config, "fuse.explainers", None) or known_explainers
    for kind, chosen, known in (("model", models, known_models), ("explainer", explainers, known_explainers)):
        if not chosen:
            raise FuseConfigError(f"fuse: no {kind}s to fuse (store attrs list none; run explain first)")
        unknown = [name for name in chosen if name not in known]
        if unknown:
            raise FuseConfigError(f"fuse.{kind}s: {unknown} not in the store (it has {known})")
    fg = float(get(config, "fuse.fg_threshold"))
    bg = float(get(config, "fuse.bg_threshold"))
    if not 0.0 <= bg < fg <= 1.0:
        raise FuseConfigError(f"fuse thresholds need 0 <= bg_threshold < fg_threshold <= 1, got bg={bg}, fg={fg}")
    workers = get(config, "fuse.num_workers", None) or os.cpu_count() or 1
    return {
        "members": [[m, e] for m in models for e in explainers],
        "fg_threshold": fg,
        "bg_threshold": bg,
        "weight_by_probability": bool(get(config, "fuse.weight_by_probability", False)),
        "write_consensus": bool(get(config, "fuse.write_consensus", False)),
        **rule_settings(config, known_explainers),
        **combination_settings(config, group),
        "num_workers": int(workers),
        "shards_per_batch": int(get(config, "fuse.shards_per_batch", None) or 2 * int(workers)),
        "overwrite": bool(get(config, "fuse.overwrite", False)),
    }


def rule_settings(config: dict, known_explainers: list[str]) -> dict:
    """The optional parts of the rule (pipeline.fuse_rules): threshold rule, smoothing, refinement."""
    rule = get(config, "fuse.threshold_rule", "fixed")
    if rule not in THRESHOLD_RULES:
        raise FuseConfigError(f"fuse.threshold_rule must be one of {list(THRESHOLD_RULES)}, got {rule!r}")
    otsu_range = [float(x) for x in get(config, "fuse.otsu_range", None) or [0.0, 1.0]]
    if len(otsu_range) != 2 or not 0.0 <= otsu_range[0] <= otsu_range[1] <= 1.0:
        raise FuseConfigError(f"fuse.otsu_range must be [low, high] with 0 <= low <= high <= 1, got {otsu_range}")
    smooth = {str(k): float(v) for k, v in (get(config, "fuse.smooth", None) or {}).items()}
    unknown = sorted(set(smooth) - set(known_explainers))
    if unknown or any(v < 0 for v in smooth.values()):
        raise FuseConfigError(f"fuse.smooth maps explainers of the store {known_explainers} to a Gaussian sigma >= 0 "
                              f"(a fraction of the map side), got {smooth}")
    refine = get(config, "fuse.refine", "none") or "none"
    if refine not in REFINEMENTS:
        raise FuseConfigError(f"fuse.refine must be one of {list(REFINEMENTS)}, got {refine!r}")
    crf = None
    if refine == "crf":
        given = get(config, "fuse.crf", None) or {}
        missing = [k for k in CRF_KEYS if k not in given]
        if missing or set(given) - set(CRF_KEYS):
            raise FuseConfigError(f"fuse.crf needs exactly the keys {list(CRF_KEYS)} (missing {missing})")
        crf = {k: float(given[k]) for k in CRF_KEYS}
    return {"threshold_rule": rule, "otsu_range": otsu_range, "smooth": smooth, "refine": refine, "crf": crf}


def combination_settings(config: dict, group: zarr.Group) -> dict:
    """`fuse.combine` and its `fuse.objectness` settings (defaults filled in, the object model resolved)."""
    combine = get(config, "fuse.combine", "none") or "none"
    if combine == "none":
        return {"combine": "none", "objectness": None}
    if combine not in COMBINATION_RULES:
        raise FuseConfigError(f"fuse.combine must be one of {['none', *COMBINATION_RULES]}, got {combine!r}")
    given = dict(get(config, "fuse.objectness", None) or {})
    unknown = sorted(set(given) - set(OBJECT_DEFAULTS))
    if unknown:
        raise FuseConfigError(f"fuse.objectness: unknown keys {unknown} (valid: {list(OBJECT_DEFAULTS)})")
    params = {**OBJECT_DEFAULTS, **{k: v for k, v in given.items() if v is not None}}
    params["model"] = params["model"] or store_objectness(group)
    if not params["model"] or saliency_name(params["model"], OBJECTNESS) not in group:
        raise FuseConfigError(f"fuse.combine={combine} needs an object map, and the store has none "
                              f"{'for ' + repr(params['model']) if params['model'] else ''}: set explain.objectness "
                              "(`make objectness-model`) and run explain again")
    if combine == "object_unary" and get(config, "fuse.crf", None) is None:
        raise FuseConfigError("fuse.combine=object_unary needs the fuse.crf section (its CRF runs on that unary)")
    return {"combine": combine, "objectness": params}


def normalise(maps: np.ndarray, q99: np.ndarray | None = None) -> np.ndarray:
    """n = min(1, relu(map) / q99(relu(map))) per image of a float16 [B, S, S] stack, as float32.

    An image whose q99 is 0 (fewer than 1% positive pixels) gets n = 1 on its positive pixels,
    the limit of the rule as q99 -> 0+. `q99` defaults to computing it from the maps.
    """
    q = q99_of_maps(maps) if q99 is None else np.asarray(q99, np.float32)
    out = np.empty((len(maps), int(np.prod(maps.shape[1:]))), np.float32)
    normalise_rows(as_bits(maps), q, out)
    return out.reshape(maps.shape)


def member_weights(probabilities: np.ndarray | None, n_members: int, n: int) -> np.ndarray:
    """[M, B] weights summing to 1 per image: uniform, or proportional to each member's target probability.

    An image where every member's probability is 0 (or missing) falls back to uniform weights.
    """
    uniform = np.full((n_members, n), 1.0 / n_members, dtype=np.float32)
    if probabilities is None:
        return uniform
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float32), nan=0.0).clip(min=0.0)
    total = p.sum(axis=0)
    return np.where(total > 0, p / np.where(total > 0, total, 1.0), uniform)


def fuse_maps(maps: list[np.ndarray], weights: np.ndarray, ok: np.ndarray, fg, bg,
              q99: np.ndarray | None = None, keep_consensus: bool = True) -> np.ndarray:
    """Fuse M float16 member stacks [B, S, S] into a structured [B, S, S] array (mask, weight[, consensus]).

    `weights` is [M, B] (summing to 1 per image), `ok` [B] marks images with status ok; the others
    get mask 255, weight 0 and consensus NaN. `q99` [M, B] are the stored percentiles (NaN or None:
    compute them from the maps). `fg` and `bg` are one threshold pair or one per image ([B]).
    """
    b, shape = len(maps[0]), maps[0].shape
    q = np.full((len(maps), b), np.nan, np.float32) if q99 is None else np.ascontiguousarray(q99, np.float32)
    pixels = int(np.prod(shape[1:]))
    # contiguous outputs: writing into the structured array's strided fields stopped the kernel vectorising
    mask, weight = np.empty((b, pixels), np.uint8), np.empty((b, pixels), np.uint8)
    consensus = np.empty((b if keep_consensus else 1, pixels), np.float32)
    fg, bg = (np.ascontiguousarray(np.broadcast_to(np.asarray(x, np.float32), (b,))) for x in (fg, bg))
    fuse_pixels(tuple(as_bits(m) for m in maps), q, np.ascontiguousarray(weights, np.float32),
                np.ascontiguousarray(ok, bool), fg, bg, mask, weight, consensus)
    out = np.empty((b, pixels), FUSED if keep_consensus else LABELS)
    out["mask"], out["weight"] = mask, weight
    if keep_consensus:
        out["consensus"] = consensus
    return out.reshape(shape)


def fuse_labels(maps: list[np.ndarray], settings: dict, weights: np.ndarray, ok: np.ndarray,
                q99: np.ndarray | None = None, images=None, keep_consensus: bool = True,
                objectness: np.ndarray | None = None) -> np.ndarray:
    """The whole fuse rule on M member stacks [B, S, S], as `fuse_maps` returns it: smoothing of the
    explainers named in settings["smooth"], fixed or per-image thresholds, optional CRF refinement.

    `images(i)` returns image i of the stack as uint8 [S, S, 3]; only the CRF calls it. With a CRF the
    consensus returned is its foreground probability, split at 0.5 (foreground) and 0.5 x
    bg_threshold / fg_threshold (background); the weight stays the members' agreement with the mask.
    With settings["combine"] (a rule of COMBINATION_RULES), `objectness` [B, S, S] holds the object maps
    and the rule makes each image's mask and weight; the consensus returned is the members' own.
    """
    explainers = [e for _, e in settings["members"]]
    sigmas = [settings["smooth"].get(e, 0.0) for e in explainers]
    maps = [smooth_maps(m, s) for m, s in zip(maps, sigmas)]
    if q99 is not None and any(sigmas):  # a blurred map has another percentile than the stored one
        q99 = np.where(np.array(sigmas)[:, None] > 0, np.nan, q99)
    fixed = settings["fg_threshold"], settings["bg_threshold"]
    if settings["threshold_rule"] == "fixed" and settings["refine"] == "none":
        return fuse_maps(maps, weights, ok, *fixed, q99=q99, keep_consensus=keep_consensus)
    b, shape = len(maps[0]), maps[0].shape
    consensus = fuse_maps(maps, weights, ok, *fixed, q99=q99)["consensus"].reshape(b, -1)
    fg, bg = image_thresholds(consensus, ok, settings)
    if settings.get("combine", "none") != "none":
        return _combined(maps, settings, ok, q99, images, keep_consensus, objectness, consensus, fg, bg)
    if settings["refine"] == "none":
        return fuse_maps(maps, weights, ok, fg, bg, q99=q99, keep_consensus=keep_consensus)
    refined = np.full_like(consensus, np.nan)
    for i in np.flatnonzero(ok):
        refined[i] = crf_consensus(images(i), consensus[i].reshape(shape[1:]), fg[i], settings).ravel()
    ratio = settings["bg_threshold"] / settings["fg_threshold"]
    is_fg, is_bg = refined >= 0.5, refined <= 0.5 * ratio
    mask = np.where(is_fg, FOREGROUND, np.where(is_bg, BACKGROUND, IGNORE)).astype(np.uint8)
    agreement = np.zeros_like(consensus)
    for member, stack in enumerate(maps):
        q = None if q99 is None else q99[member]
        n = normalise(stack, q).reshape(b, -1)
        votes = np.where(is_fg, n >= fg[:, None], np.where(is_bg, n <= bg[:, None], False))
        agreement += weights[member][:, None] * votes
    out = np.empty((b, consensus.shape[1]), FUSED if keep_consensus else LABELS)
    out["mask"] = np.where(ok[:, None], mask, IGNORE)
    out["weight"] = np.where(ok[:, None] & (mask != IGNORE), np.round(np.clip(agreement, 0, 1) * 255), 0)
    if keep_consensus:
        out["consensus"] = refined
    return out.reshape(shape)


def _combined(maps: list[np.ndarray], settings: dict, ok: np.ndarray, q99: np.ndarray | None, images,
              keep_consensus: bool, objectness: np.ndarray, consensus: np.ndarray, fg: np.ndarray,
              bg: np.ndarray) -> np.ndarray:
    """fuse_labels' result where a combination rule makes each image's mask and weight."""
    if objectness is None:
        raise StoreError(f"fuse.combine={settings['combine']} was given no object maps")
    rule = COMBINATION_RULES[settings["combine"]]
    b, shape = len(maps[0]), maps[0].shape
    out = np.empty((b, consensus.shape[1]), FUSED if keep_consensus else LABELS)
    out["mask"], out["weight"] = IGNORE, 0
    members = np.stack([normalise(stack, None if q99 is None else q99[m]) for m, stack in enumerate(maps)], axis=1)
    for i in np.flatnonzero(ok):
        image_settings = {**settings, "fg_threshold": float(fg[i]), "bg_threshold": float(bg[i])}
        mask, weight = rule(consensus[i].reshape(shape[1:]), members[i], np.asarray(objectness[i], np.float32),
                            images(i), image_settings)
        out["mask"][i], out["weight"][i] = mask.ravel(), weight.ravel()
    if keep_consensus:
        out["consensus"] = np.where(ok[:, None], consensus, np.nan)
    return out.reshape(shape)


def _fuse_shard(*blocks: np.ndarray, settings: dict, weights: np.ndarray, q99: np.ndarray, ok: np.ndarray,
                images, keep_consensus: bool, block_info=None) -> np.ndarray:
    """One dask task: fuse one shard's M member blocks (and, with a combination rule, its object maps last).

    `weights` and `q99` [M, B] and `ok` [B] cover the whole batch; the block's location picks its rows.
    `images(i)` reads image i of the store at the map size (for the CRF).
    """
    start, stop = block_info[None]["array-location"][0]
    combined = settings.get("combine", "none") != "none"
    members, objectness = (blocks[:-1], blocks[-1]) if combined else (blocks, None)
    return fuse_labels(list(members), settings, weights[:, start:stop], ok[start:stop], q99=q99[:, start:stop],
                       images=lambda i: images(start + i), keep_consensus=keep_consensus, objectness=objectness)


def object_maps(group: zarr.Group, settings: dict) -> StoredMaps | None:
    """The object maps a combination rule reads (None without one)."""
    if settings.get("combine", "none") == "none":
        return None
    return StoredMaps(group, settings["objectness"]["model"], OBJECTNESS)


def stored_q99(group: zarr.Group, members: list[tuple[str, str]], rows: slice = slice(None)) -> np.ndarray:
    """float32 [M, rows]: each member map's q99 as the explain stage stored it; NaN where not stored
    (stores written before it was), which the kernel then computes."""
    count = len(range(n_images(group))[rows])
    return np.stack([np.asarray(group[q99_name(m, e)][rows], np.float32) if q99_name(m, e) in group
                     else np.full(count, np.nan, np.float32) for m, e in members])


def image_consensus(group: zarr.Group, index: int) -> np.ndarray:
    """float32 [S, S]: one fused image's consensus, read when stored, else recomputed as the fuse run made it."""
    if CONSENSUS in group:
        return group[CONSENSUS][index].astype(np.float32)
    settings = {**RULE_DEFAULTS, **fuse_settings(group)}
    members = [tuple(m) for m in settings["members"]]
    probabilities = (np.array([[group[score_name(m)][index]] for m, _ in members], np.float32)
                     if settings["weight_by_probability"] else None)
    fused = fuse_labels([StoredMaps(group, m, e)[index][None] for m, e in members], settings,
                        member_weights(probabilities, len(members), 1),
                        np.array([group[INDEX_STATUS][index] == STATUS_OK]),
                        q99=stored_q99(group, members, slice(index, index + 1)),
                        images=lambda _: image_at_map_size(group, index),
                        objectness=_object_map_at(object_maps(group, settings), index))
    return fused["consensus"][0].astype(np.float32)


def _object_map_at(maps: StoredMaps | None, index: int) -> np.ndarray | None:
    return None if maps is None else maps[index][None]


def _image_in_batch(group: zarr.Group, first: int, i: int) -> np.ndarray:
    return image_at_map_size(group, first + i)


def _runs(shards: list[int], limit: int) -> list[tuple[int, int]]:
    """Split sorted shard numbers into contiguous [first, last+1) runs of at most `limit` shards."""
    runs: list[tuple[int, int]] = []
    for shard in shards:
        if runs and runs[-1][1] == shard and runs[-1][1] - runs[-1][0] < limit:
            runs[-1] = (runs[-1][0], shard + 1)
        else:
            runs.append((shard, shard + 1))
    return runs


def check_accepted(config: dict, group: zarr.Group) -> bool:
    """Refuse a fuse config that differs from the one the store was fused with, unless fuse.overwrite
    is set; True when the old labels are to be replaced. Writes nothing, so it can run before any stage."""
    settings = resolve_config(config, group)
    previous = fuse_settings(group)
    wanted = {k: settings[k] for k in LABEL_KEYS}
    if not previous:
        return False
    old = {k: previous.get(k) for k in LABEL_KEYS}
    if old == wanted:
        return False
    if not settings["overwrite"]:
        changed = {k: (old[k], wanted[k]) for k in LABEL_KEYS if old[k] != wanted[k]}
        raise FuseConfigError(f"store was fused with another fuse config (changed: {changed}); "
                              "set fuse.overwrite=true to replace its labels, or use a new run")
    return True


def _forget_labels(group: zarr.Group, settings: dict, n_shards: int) -> None:
    """Before an accepted overwrite: every fuse flag off, and the consensus gone if no longer wanted."""
    if progress_name(FUSE_STAGE, FUSE_KEY) in group:
        group[progress_name(FUSE_STAGE, FUSE_KEY)][:] = np.zeros(n_shards, bool)
    if not settings["write_consensus"] and CONSENSUS in group:
        del group[CONSENSUS]


def _refuse_damaged_inputs(group: zarr.Group, store_path: str | Path, members: list[tuple[str, str]],
                           weighted: bool, todo: list[int], k: int, n: int, object_model: str | None = None) -> None:
    """Maps of a missing or damaged shard would read as zeros and make wrong labels: stop and say how to repair."""
    names = [f(m, e) for m, e in [*members, *([(object_model, OBJECTNESS)] if object_model else [])]
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


def run(config: dict, store_path: str | Path) -> dict:
    """Fuse every shard whose explanations are complete and whose labels are not yet written."""
    started = time.perf_counter()
    group = open_store(store_path)
    settings = resolve_config(config, group)
    n, k = n_images(group), shard_size(group)
    s = map_size(group)
    n_shards = shard_count(n, k)
    members = [tuple(m) for m in settings["members"]]
    for model, explainer in members:
        if saliency_name(model, explainer) not in group:
            raise StoreError(f"fuse: {saliency_name(model, explainer)} is missing from {store_path}")
    models = list(dict.fromkeys(m for m, _ in members))
    object_model = (settings["objectness"] or {}).get("model") if settings["combine"] != "none" else None
    if settings["weight_by_probability"]:
        for model in models:
            if score_name(model) not in group:
                raise StoreError(f"fuse.weight_by_probability: {score_name(model)} is missing from {store_path}")

    replace = check_accepted(config, group)
    damaged = {} if replace else damaged_flagged(store_path, group, [(FUSE_STAGE, FUSE_KEY)],
                                                 [MASK, WEIGHT, CONSENSUS], k, n)
    done = np.zeros(n_shards, bool) if replace else read_flags(group, FUSE_STAGE, FUSE_KEY, n_shards)
    done[list(damaged)] = False
    explained = np.logical_and.reduce([read_flags(group, EXPLAIN_STAGE, m, n_shards)
                                       for m in models + ([object_model] if object_model else [])])
    todo = [int(i) for i in np.flatnonzero(explained & ~done)]
    _refuse_damaged_inputs(group, store_path, members, settings["weight_by_probability"], todo, k, n, object_model)

    report_redone(FUSE_STAGE, damaged)
    discard_damaged(store_path, group, [MASK, WEIGHT, CONSENSUS], list(damaged), k, n)
    clear_flags(group, [(FUSE_STAGE, FUSE_KEY)], list(damaged))
    if replace:
        _forget_labels(group, settings, n_shards)
    outputs = _output_arrays(group, n, s, settings["write_consensus"])
    write_layout(group, fuse={key: settings[key] for key in LABEL_KEYS})
    record_config(group, store_path, config)
    done_shards(group, FUSE_STAGE, FUSE_KEY, n_shards)  # creates the flags on a first run

    ok = np.asarray(group[INDEX_STATUS][:]) == STATUS_OK
    probabilities = (np.stack([np.asarray(group[score_name(m)][:], np.float32) for m, _ in members])
                     if settings["weight_by_probability"] else None)
    weights = member_weights(probabilities, len(members), n)
    q99 = stored_q99(group, members)
    sources = [da.from_array(StoredMaps(group, m, e), chunks=(k, s, s), asarray=False) for m, e in members]
    if object_model:
        sources.append(da.from_array(object_maps(group, settings), chunks=(k, s, s), asarray=False))
    rule = {key: settings[key] for key in LABEL_KEYS}
    keep_consensus = settings["write_consensus"]

    for first, last in _runs(todo, settings["shards_per_batch"]):
        rows = slice(first * k, min(last * k, n))
        fused = da.map_blocks(_fuse_shard, *(x[rows] for x in sources), dtype=FUSED if keep_consensus else LABELS,
                              settings=rule, weights=weights[:, rows], q99=q99[:, rows], ok=ok[rows],
                              images=partial(_image_in_batch, group, rows.start), keep_consensus=keep_consensus)
        fields = ["mask", "weight", "consensus"][:len(outputs)]
        with dask.config.set(scheduler="threads", num_workers=settings["num_workers"]):
            da.store([fused[f] for f in fields], outputs, regions=[(rows,)] * len(outputs), lock=False)
        for shard in range(first, last):
            mark_done(group, FUSE_STAGE, FUSE_KEY, shard)

    waiting = int((~explained & ~done).sum())
    return {
        "members": [f"{m}/{e}" for m, e in members],
        "shards_total": n_shards,
        "shards_fused": len(todo),
        "shards_already_done": int(done.sum()),
        "shards_waiting_for_explain": waiting,
        "images_fused": int(sum(min((i + 1) * k, n) - i * k for i in todo)),
        "seconds": round(time.perf_counter() - started, 3),
    }
