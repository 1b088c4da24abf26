"""The fuse rule as a library: what one image's member maps become (docs/fusion.md). No store, no dask.

`fuse_image` is the one per-image rule; the fuse stage, label quality and the pictures all call it.
Each member's map is cut to its positive part and scaled by the image's own 99th percentile,
n = min(1, relu(map) / q99); the consensus c is the (optionally probability-weighted) mean of n
over members. Then, chosen by name in `fuse:` from plain registries (name -> function):

- a threshold rule (THRESHOLD_RULES) gives the image's tau_fg (tau_bg keeps the configured ratio);
  c >= tau_fg is foreground, c <= tau_bg background, the rest ignore, and a decided pixel's weight is
  the (same-weighted) fraction of members whose own n votes for the decision;
- a refinement (REFINEMENTS) replaces c by a foreground probability (a dense CRF over the photo);
- a combination (COMBINATIONS) decides mask and weight from c, the normalised members and a
  class-agnostic objectness map of the image.

Smoothing blurs chosen explainers' maps first: SmoothGrad's pixel-scale noise then votes for regions.
Adding a rule is one function and one registry entry (docs/architecture.md shows one).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from core.errors import PsslError
from core.schema import FuseRule
from core.store import BACKGROUND, FOREGROUND, IGNORE, WEIGHT_SCALE
from pipeline.fuse.crf import consensus_probability, dense_crf
from pipeline.fuse.kernel import as_bits, fuse_pixels, normalise_rows, q99_of_maps
from pipeline.fuse.object_rules import object_regions, object_unary

LABELS = np.dtype([("mask", "u1"), ("weight", "u1")])
FUSED = np.dtype(LABELS.descr + [("consensus", "f2")])
HISTOGRAM_BINS = 64


class FuseRuleError(PsslError, ValueError):
    """A rule that cannot run on what it was given (e.g. a combination without an objectness map)."""


@dataclass(frozen=True)
class FusedImage:
    """One image's labels: mask u1 [S, S] (0/1/255), weight u1 [S, S], consensus f16 [S, S] (as stored)."""
    mask: np.ndarray
    weight: np.ndarray
    consensus: np.ndarray


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
    """The compiled thresholding kernel on M float16 member stacks [B, S, S]: a structured [B, S, S]
    array (mask, weight[, consensus]).

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


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """float16 [B, S, S] maps blurred per image with a Gaussian of `sigma` x S pixels (0: unchanged).

    Sizes are fractions of the map side, so one setting means the same on 96 px and 224 px maps."""
    if sigma <= 0:
        return maps
    pixels = sigma * maps.shape[-1]
    blurred = ndimage.gaussian_filter(maps.astype(np.float32), sigma=(0, pixels, pixels), mode="nearest")
    return blurred.astype(np.float16)


# --- threshold rules: rule(consensus f16 [P], settings) -> this image's tau_fg -----------------------
def fixed_threshold(consensus: np.ndarray, settings: FuseRule) -> float:
    """The configured tau_fg, the same for every image."""
    return settings.fg_threshold


def otsu_threshold(consensus: np.ndarray, settings: FuseRule) -> float:
    """Otsu's split of the image's consensus (between-class variance maximised over a histogram),
    clipped to `otsu_range` so a photo whose consensus is flat cannot split at noise. Objects fill 2 %
    of one photo and 80 % of the next; one fixed tau cannot suit both."""
    low, high = settings.otsu_range
    counts, edges = np.histogram(consensus, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(np.clip(edges[1:][int(np.argmax(between))], low, high))


# --- refinements: refine(image u8 [S, S, 3], consensus f16 [S, S], tau_fg, settings) -> p_fg f32 [S, S] --
def crf_refinement(image: np.ndarray, consensus: np.ndarray, fg: float, settings: FuseRule) -> np.ndarray:
    """Foreground probability after a dense CRF that pulls the consensus towards the photo's colour edges.

    The unary is a logistic of the consensus around this image's tau_fg (the decision boundary maps to
    p = 0.5; `crf.temperature` sets how sure the consensus is), the pairwise terms are the standard
    smoothness and appearance kernels (pipeline/fuse/crf.py).
    """
    return dense_crf(image, consensus_probability(consensus, fg, settings.crf.temperature), settings.crf)


ThresholdRule = Callable[[np.ndarray, FuseRule], float]
Refinement = Callable[[np.ndarray, np.ndarray, float, FuseRule], np.ndarray]
# combine(consensus f32 [S, S], normalised f32 [M, S, S], objectness f32 [S, S] in [0, 1],
#         image u8 [S, S, 3], thresholds (tau_fg, tau_bg) of this image, settings) -> (mask u1, weight u1)
Combination = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[float, float], FuseRule],
                       tuple[np.ndarray, np.ndarray]]

THRESHOLD_RULES: dict[str, ThresholdRule] = {"fixed": fixed_threshold, "otsu": otsu_threshold}
REFINEMENTS: dict[str, Refinement] = {"crf": crf_refinement}  # "none": no refinement
# "none": the members alone decide; the object rules: pipeline/fuse/object_rules.py
COMBINATIONS: dict[str, Combination] = {"object_regions": object_regions, "object_unary": object_unary}


def rule_registries() -> dict:
    """The schema's validation context for fuse rule names (core/schema.py FuseRule)."""
    return {"threshold_rules": THRESHOLD_RULES, "refinements": REFINEMENTS, "combinations": COMBINATIONS}


def needs_image(settings: FuseRule) -> bool:
    """Whether the rule reads the photo (at the map size): refinements and combinations do."""
    return settings.refine != "none" or settings.combine != "none"


def needs_objectness(settings: FuseRule) -> bool:
    return settings.combine != "none"


def unlabelled(size: int) -> FusedImage:
    """What an image that could not be read or explained gets: all ignore, weight 0, consensus NaN."""
    return FusedImage(np.full((size, size), IGNORE, np.uint8), np.zeros((size, size), np.uint8),
                      np.full((size, size), np.nan, np.float16))


def fuse_image(maps: np.ndarray, q99: np.ndarray, explainers: Sequence[str], settings: FuseRule,
               probabilities: np.ndarray | None = None, image: np.ndarray | None = None,
               objectness: np.ndarray | None = None) -> FusedImage:
    """The labels of one image from its M member maps.

    maps: float16 [M, S, S] as stored (`StoredMaps`); q99: float32 [M], each map's stored percentile
    (NaN: compute it); explainers: each member's explainer, for `settings.smooth`; probabilities:
    float32 [M] target probabilities, read when `settings.weight_by_probability`; image: uint8
    [S, S, 3] at the map size, needed when `needs_image(settings)`; objectness: float32 [S, S] in
    [0, 1], needed when `needs_objectness(settings)`. With a refinement the consensus returned is its
    foreground probability, split at 0.5 and 0.5 x bg_threshold / fg_threshold; the weight stays the
    members' agreement with the mask.
    """
    sigmas = np.array([settings.smooth.get(e, 0.0) for e in explainers], np.float32)
    stacks = [smooth_maps(maps[m][None], sigma) for m, sigma in enumerate(sigmas)]
    # a blurred map has another percentile than the stored one
    q = np.where(sigmas > 0, np.nan, np.asarray(q99, np.float32))[:, None]
    if settings.weight_by_probability and probabilities is None:
        raise FuseRuleError("fuse.weight_by_probability needs the members' target probabilities")
    weights = member_weights(probabilities[:, None] if settings.weight_by_probability else None, len(stacks), 1)
    ok = np.ones(1, bool)
    fixed = settings.fg_threshold, settings.bg_threshold
    if settings.threshold_rule == "fixed" and not needs_image(settings):
        return _as_image(fuse_maps(stacks, weights, ok, *fixed, q99=q)[0])
    consensus = fuse_maps(stacks, weights, ok, *fixed, q99=q)["consensus"][0]
    fg = np.float32(THRESHOLD_RULES[settings.threshold_rule](consensus.ravel(), settings))
    bg = (np.array([fg]) * (settings.bg_threshold / settings.fg_threshold))[0]  # float32, as tau_fg
    if needs_image(settings) and image is None:
        raise FuseRuleError(f"fuse: refine={settings.refine!r} / combine={settings.combine!r} needs the image")
    if needs_objectness(settings):
        if objectness is None:
            raise FuseRuleError(f"fuse.combine={settings.combine!r} needs an objectness map of each image")
        normalised = np.concatenate([normalise(stack, q[m]) for m, stack in enumerate(stacks)])
        mask, weight = COMBINATIONS[settings.combine](consensus.astype(np.float32), normalised, objectness, image,
                                                      (float(fg), float(bg)), settings)
        return FusedImage(mask.astype(np.uint8), weight.astype(np.uint8), consensus)
    if settings.refine == "none":
        return _as_image(fuse_maps(stacks, weights, ok, fg, bg, q99=q)[0])
    # the refined probability is kept at the consensus' precision, float16, before it is split
    refined = REFINEMENTS[settings.refine](image, consensus, float(fg), settings).astype(consensus.dtype)
    ratio = settings.bg_threshold / settings.fg_threshold
    is_fg, is_bg = refined >= 0.5, refined <= 0.5 * ratio
    mask = np.where(is_fg, FOREGROUND, np.where(is_bg, BACKGROUND, IGNORE)).astype(np.uint8)
    agreement = np.zeros_like(consensus)
    for m, stack in enumerate(stacks):
        n = normalise(stack, q[m])[0]
        agreement += weights[m, 0] * np.where(is_fg, n >= fg, np.where(is_bg, n <= bg, False))
    weight = np.where(mask != IGNORE, np.round(np.clip(agreement, 0, 1) * WEIGHT_SCALE), 0).astype(np.uint8)
    return FusedImage(mask, weight, refined)


def _as_image(fused: np.ndarray) -> FusedImage:
    return FusedImage(fused["mask"], fused["weight"], fused["consensus"])
