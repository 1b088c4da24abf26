"""Fuse stage: turn the stored explanations of every (model, explainer) member into PSSL labels.

The rule (docs/fusion.md): each member's map is cut to its positive part and scaled by the image's
own 99th percentile, n = min(1, relu(map) / q99); the consensus c is the (optionally probability-
weighted) mean of n over members; c >= fg_threshold is foreground, c <= bg_threshold background, the
rest ignore. The weight of a decided pixel is the (same-weighted) fraction of members whose own n
votes for the mask's decision.

Work is elementwise over members and blocked along images: dask reads whole shards
(`chunks=a.shards`), one task fuses one shard, and `da.store` writes it into pre-created arrays, so
every shard file has exactly one writer. Shards are fused in batches; a batch's fuse flags are set
after its write, so an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr

from pipeline.config import ConfigError, get
from pipeline.store import (STATUS_OK, StoreError, done_shards, mark_done, n_images, open_store,
                            progress_name, require_array, saliency_name, score_name, shard_count,
                            shard_size)

MASK, WEIGHT, CONSENSUS = "pssl/mask", "pssl/weight", "pssl/consensus"
BACKGROUND, FOREGROUND, IGNORE = 0, 1, 255
FUSE_STAGE, FUSE_KEY = "fuse", "labels"
PERCENTILE = 0.99  # part of the rule itself (n = relu / q99), not a tuning knob
# Pixels fused at once inside a shard task (2 images at 224, 32 at 64): keeps the float32 working
# set near the L2 cache; at 224, sub-batches of 2-4 images measured 25% faster per image than 32.
SUB_BATCH_PIXELS = 1 << 17
FUSED = np.dtype([("mask", "u1"), ("weight", "u1"), ("consensus", "f2")])
# Keys that change the labels; the others (workers, batch size, overwrite) only change how fast.
LABEL_KEYS = ("members", "fg_threshold", "bg_threshold", "weight_by_probability", "write_consensus")


class FuseConfigError(ConfigError):
    """A fuse config that cannot be used, or that differs from the one the store was fused with."""


def resolve_config(config: dict, group: zarr.Group) -> dict:
    """The fuse settings with members made explicit, checked against the store."""
    models = get(config, "fuse.models", None) or list(group.attrs.get("models", []))
    explainers = get(config, "fuse.explainers", None) or list(group.attrs.get("explainers", []))
    known_models = list(group.attrs.get("models", []))
    known_explainers = list(group.attrs.get("explainers", []))
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
        "write_consensus": bool(get(config, "fuse.write_consensus", True)),
        "num_workers": int(workers),
        "shards_per_batch": int(get(config, "fuse.shards_per_batch", None) or 2 * int(workers)),
        "overwrite": bool(get(config, "fuse.overwrite", False)),
    }


def percentile_99(rows: np.ndarray) -> np.ndarray:
    """Per-row 99th percentile with numpy's default (linear) interpolation; equals np.quantile(rows, 0.99, 1).

    The two order statistics the interpolation needs are selected from the top end: partitioning
    the negated rows around index ~0.01*width measured 4x cheaper than np.quantile's partition around
    ~0.99*width, and this selection is most of fusion's compute.
    """
    width = rows.shape[1]
    position = (width - 1) * PERCENTILE
    low = int(np.floor(position))
    kth = width - 1 - low  # the low-th smallest value is the kth smallest of the negated row
    negated = np.negative(rows)
    negated.partition(kth, axis=1)
    at_low = -negated[:, kth]
    at_high = -negated[:, :kth].max(axis=1) if kth > 0 else at_low  # the next larger value
    return at_low + (at_high - at_low) * np.float32(position - low)


def normalise(maps: np.ndarray) -> np.ndarray:
    """n = min(1, relu(map) / q99(relu(map))) per image of a [B, S, S] stack, as float32.

    An image whose q99 is 0 (fewer than 1% positive pixels) gets n = 1 on its positive pixels,
    the limit of the rule as q99 -> 0+.
    """
    n = maps.astype(np.float32)
    np.maximum(n, 0.0, out=n)
    q = percentile_99(n.reshape(len(n), -1))
    flat = q <= 0
    n *= (1.0 / np.where(flat, 1.0, q)).astype(np.float32)[:, None, None]
    np.minimum(n, 1.0, out=n)
    if flat.any():
        n[flat] = n[flat] > 0
    return n


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


def fuse_maps(maps: list[np.ndarray], weights: np.ndarray, ok: np.ndarray, fg: float, bg: float) -> np.ndarray:
    """Fuse M member stacks [B, S, S] into a structured [B, S, S] array (mask, weight, consensus).

    `weights` is [M, B] (summing to 1 per image), `ok` [B] marks images with status ok; the others
    get mask 255, weight 0 and consensus NaN. Members are streamed, so memory is four float32 stacks.
    """
    shape = maps[0].shape
    consensus = np.zeros(shape, np.float32)
    votes_fg = np.zeros(shape, np.float32)
    votes_bg = np.zeros(shape, np.float32)
    scratch = np.empty(shape, np.float32)
    for member, stack in enumerate(maps):
        n = normalise(stack)
        w = weights[member][:, None, None]
        np.multiply(n >= fg, w, out=scratch)
        votes_fg += scratch
        np.multiply(n <= bg, w, out=scratch)
        votes_bg += scratch
        n *= w
        consensus += n
    is_fg, is_bg = consensus >= fg, consensus <= bg
    out = np.empty(shape, FUSED)
    out["mask"] = np.where(is_fg, FOREGROUND, np.where(is_bg, BACKGROUND, IGNORE))
    agreement = np.where(is_fg, votes_fg, np.where(is_bg, votes_bg, 0.0))
    out["weight"] = np.rint(np.clip(agreement, 0.0, 1.0) * 255.0).astype(np.uint8)
    out["consensus"] = consensus
    bad = ~np.asarray(ok, bool)
    out["mask"][bad], out["weight"][bad], out["consensus"][bad] = IGNORE, 0, np.nan
    return out


def _fuse_shard(*blocks: np.ndarray, weights: np.ndarray, ok: np.ndarray, fg: float, bg: float,
                block_info=None) -> np.ndarray:
    """One dask task: fuse one shard's members in sub-batches of images.

    `weights` [M, B] and `ok` [B] cover the whole batch; the block's location picks its rows.
    """
    start, stop = block_info[None]["array-location"][0]
    out = np.empty(blocks[0].shape, FUSED)
    step = max(1, SUB_BATCH_PIXELS // int(np.prod(blocks[0].shape[1:])))
    for lo in range(0, stop - start, step):
        hi = min(lo + step, stop - start)
        rows = slice(start + lo, start + hi)
        out[lo:hi] = fuse_maps([b[lo:hi] for b in blocks], weights[:, rows], ok[rows], fg, bg)
    return out


def _flags(group: zarr.Group, stage: str, key: str, n_shards: int) -> np.ndarray:
    """Read a stage's shard flags without creating them (all False when the stage never ran)."""
    name = progress_name(stage, key)
    return np.asarray(group[name][:], bool) if name in group else np.zeros(n_shards, bool)


def _runs(shards: list[int], limit: int) -> list[tuple[int, int]]:
    """Split sorted shard numbers into contiguous [first, last+1) runs of at most `limit` shards."""
    runs: list[tuple[int, int]] = []
    for shard in shards:
        if runs and runs[-1][1] == shard and runs[-1][1] - runs[-1][0] < limit:
            runs[-1] = (runs[-1][0], shard + 1)
        else:
            runs.append((shard, shard + 1))
    return runs


def labelled_images(group: zarr.Group) -> np.ndarray:
    """bool [N]: images whose shard is fused and whose status is ok, i.e. that carry a real label."""
    n, k = n_images(group), shard_size(group)
    flag = progress_name(FUSE_STAGE, FUSE_KEY)
    if MASK not in group or flag not in group:
        return np.zeros(n, bool)
    fused = np.repeat(np.asarray(group[flag][:], bool), k)[:n]
    return fused & (np.asarray(group["index/status"][:]) == STATUS_OK)


def _check_previous(group: zarr.Group, settings: dict, n_shards: int) -> None:
    """Refuse a changed fuse config unless overwrite is set; with overwrite, forget the old labels."""
    previous = group.attrs.get("fuse")
    wanted = {k: settings[k] for k in LABEL_KEYS}
    if previous is None:
        return
    old = {k: previous.get(k) for k in LABEL_KEYS}
    if old == wanted:
        return
    if not settings["overwrite"]:
        changed = {k: (old[k], wanted[k]) for k in LABEL_KEYS if old[k] != wanted[k]}
        raise FuseConfigError(f"store was fused with another fuse config (changed: {changed}); "
                              "set fuse.overwrite=true to replace its labels, or use a new run")
    if progress_name(FUSE_STAGE, FUSE_KEY) in group:
        group[progress_name(FUSE_STAGE, FUSE_KEY)][:] = np.zeros(n_shards, bool)
    if not wanted["write_consensus"] and CONSENSUS in group:
        del group[CONSENSUS]


def _output_arrays(group: zarr.Group, n: int, s: int, write_consensus: bool) -> list[zarr.Array]:
    """Create (or reopen) the label arrays."""
    specs = [(MASK, np.uint8, IGNORE), (WEIGHT, np.uint8, 0)]
    if write_consensus:
        specs.append((CONSENSUS, np.float16, np.nan))
    return [require_array(group, name, (n, s, s), dtype, (s, s), fill_value=fill) for name, dtype, fill in specs]


def run(config: dict, store_path: str | Path) -> dict:
    """Fuse every shard whose explanations are complete and whose labels are not yet written."""
    started = time.perf_counter()
    group = open_store(store_path)
    settings = resolve_config(config, group)
    n, k = n_images(group), shard_size(group)
    s = int(group.attrs["map_size"])
    n_shards = shard_count(n, k)
    members = [tuple(m) for m in settings["members"]]
    for model, explainer in members:
        if saliency_name(model, explainer) not in group:
            raise StoreError(f"fuse: {saliency_name(model, explainer)} is missing from {store_path}")
    models = list(dict.fromkeys(m for m, _ in members))
    if settings["weight_by_probability"]:
        for model in models:
            if score_name(model) not in group:
                raise StoreError(f"fuse.weight_by_probability: {score_name(model)} is missing from {store_path}")

    _check_previous(group, settings, n_shards)
    outputs = _output_arrays(group, n, s, settings["write_consensus"])
    group.attrs["fuse"] = {key: settings[key] for key in LABEL_KEYS}

    done = done_shards(group, FUSE_STAGE, FUSE_KEY, n_shards)
    explained = np.logical_and.reduce([_flags(group, "explain", m, n_shards) for m in models])
    todo = [int(i) for i in np.flatnonzero(explained & ~done)]

    ok = np.asarray(group["index/status"][:]) == STATUS_OK
    probabilities = (np.stack([np.asarray(group[score_name(m)][:], np.float32) for m, _ in members])
                     if settings["weight_by_probability"] else None)
    weights = member_weights(probabilities, len(members), n)
    sources = [da.from_zarr(a, chunks=a.shards) for a in (group[saliency_name(m, e)] for m, e in members)]

    for first, last in _runs(todo, settings["shards_per_batch"]):
        rows = slice(first * k, min(last * k, n))
        fused = da.map_blocks(_fuse_shard, *(x[rows] for x in sources), dtype=FUSED, weights=weights[:, rows],
                              ok=ok[rows], fg=settings["fg_threshold"], bg=settings["bg_threshold"])
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
