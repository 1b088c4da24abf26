"""Combination rules: class evidence from the explainer ensemble, object extent from the object map.

The ensemble's consensus knows which class is where but not where the object ends; the class-agnostic
object map (pipeline/explain/objectness.py) knows where objects end but not their class. Each rule here is a
pure function of one image,

    rule(consensus f32[S, S], members f32[M, S, S], objectness f32[S, S], image u8[S, S, 3],
         (tau_fg, tau_bg), settings) -> (mask u8[S, S], weight u8[S, S])

(`members`: each member's normalised map n, for rules that want them; `settings`: the FuseRule, whose
`objectness` section holds this module's keys, core/schema.py ObjectRuleSection). They are entries
of pipeline/fuse/rules.py's COMBINATIONS. Shared vocabulary:

- class evidence e(x) = min(1, c(x) / tau_fg): how far the consensus goes towards "foreground";
- object regions: connected components of objectness >= object_threshold; a region is *the class* when
  its mean evidence reaches `keep_evidence` (the CAM covers a discriminative part, not the whole object,
  so a mean, not a majority); inside a kept region, a colour superpixel (SLIC over the image) whose mean
  evidence is below `part_evidence` is dropped: another object in front of the target (people on the
  sofa) is salient and joined to it, but carries no evidence for the class;
- coverage: the share of the consensus' foreground (c >= tau_fg) inside kept regions. Below
  `min_coverage` the object model found some other object (a person holding the class), and the image
  falls back to the consensus alone (its CRF when fuse.refine is crf);
- weight = how much the two sources agree: foreground o(x) * s(x), background (1 - o(x)) * (1 - s(x)),
  with s the class support (a kept region's normalised evidence, else e(x)). Objects without class
  evidence and class evidence outside any object therefore get a weight near 0.

Rules: `object_regions` (kept regions are foreground, evidence outside them ignore) and `object_unary`
(the dense CRF's unary made from both: p = o * k + (1 - o) * outside_weight * p_consensus).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from core.store import BACKGROUND, FOREGROUND, IGNORE, WEIGHT_SCALE
from pipeline.fuse.crf import consensus_probability, dense_crf


def class_evidence(consensus: np.ndarray, fg: float) -> np.ndarray:
    return np.clip(consensus / max(fg, 1e-6), 0.0, 1.0).astype(np.float32)


def superpixels(image: np.ndarray, segments: int, mask: np.ndarray) -> np.ndarray:
    """int [S, S] SLIC labels inside `mask` (0 outside), colour-driven so that two touching objects split."""
    from skimage.segmentation import slic

    if segments <= 0 or not mask.any():
        return mask.astype(np.int32)
    return slic(image, n_segments=segments, compactness=10, start_label=1, mask=mask, channel_axis=-1)


def object_support(evidence: np.ndarray, objectness: np.ndarray, image: np.ndarray, params) -> tuple[np.ndarray, float]:
    """(k float32 [S, S], coverage): each pixel's support from the kept object region it lies in (0 outside
    kept regions and in dropped parts; min(1, mean evidence / keep_evidence) inside), and the share of the
    consensus' foreground that lies in kept regions. `params`: the ObjectRuleSection."""
    regions, count = ndimage.label(objectness >= params.object_threshold)
    support = np.zeros(evidence.shape, np.float32)
    if count:
        means = ndimage.mean(evidence, regions, index=np.arange(1, count + 1))
        kept = np.flatnonzero(means >= params.keep_evidence) + 1
        strength = np.minimum(1.0, means / max(params.keep_evidence, 1e-6)).astype(np.float32)
        in_kept = np.isin(regions, kept)
        support[in_kept] = strength[regions[in_kept] - 1]
        if params.segments > 0 and in_kept.any():
            parts = superpixels(image, int(params.segments), in_kept)
            part_means = ndimage.mean(evidence, parts, index=np.arange(parts.max() + 1))
            dropped = in_kept & (part_means[parts] < params.part_evidence)
            support[dropped] = 0
    foreground = evidence >= 1.0
    coverage = float((foreground & (support > 0)).sum() / foreground.sum()) if foreground.any() else 0.0
    return support, coverage


def agreement_weight(mask: np.ndarray, objectness: np.ndarray, support: np.ndarray) -> np.ndarray:
    """uint8 weight: foreground o * s, background (1 - o) * (1 - s), ignore 0."""
    agreement = np.where(mask == FOREGROUND, objectness * support,
                         np.where(mask == BACKGROUND, (1 - objectness) * (1 - support), 0.0))
    return np.round(np.clip(agreement, 0, 1) * WEIGHT_SCALE).astype(np.uint8)


def consensus_mask(consensus: np.ndarray, image: np.ndarray, thresholds: tuple[float, float], settings) -> np.ndarray:
    """The labels of the consensus alone, as the fuse rule makes them: thresholds, or its CRF when configured."""
    fg, bg = thresholds
    if settings.refine == "crf":
        q = dense_crf(image, consensus_probability(consensus, fg, settings.crf.temperature), settings.crf)
        fg, bg = 0.5, 0.5 * bg / fg
    else:
        q = consensus
    return np.where(q >= fg, FOREGROUND, np.where(q <= bg, BACKGROUND, IGNORE)).astype(np.uint8)


def object_regions(consensus, members, objectness, image, thresholds, settings) -> tuple[np.ndarray, np.ndarray]:
    """Kept object regions are foreground; class evidence outside them is ignore; the rest background."""
    params = settings.objectness
    evidence = class_evidence(consensus, thresholds[0])
    support, coverage = object_support(evidence, objectness, image, params)
    if coverage < params.min_coverage:
        mask = consensus_mask(consensus, image, thresholds, settings)
        return mask, agreement_weight(mask, objectness, evidence)
    mask = np.where(support > 0, FOREGROUND,
                    np.where(consensus >= thresholds[0], IGNORE, BACKGROUND)).astype(np.uint8)
    return mask, agreement_weight(mask, objectness, np.maximum(support, evidence))


def object_unary(consensus, members, objectness, image, thresholds, settings) -> tuple[np.ndarray, np.ndarray]:
    """The dense CRF (fuse.crf) over p = o * k + (1 - o) * outside_weight * p_consensus: kept objects pull towards
    foreground with their whole extent, class evidence outside objects only part of the way."""
    params = settings.objectness
    fg, bg = thresholds
    evidence = class_evidence(consensus, fg)
    support, coverage = object_support(evidence, objectness, image, params)
    p_consensus = consensus_probability(consensus, fg, settings.crf.temperature)
    if coverage < params.min_coverage:
        p = p_consensus
    else:
        p = objectness * support + (1 - objectness) * params.outside_weight * p_consensus
    q = dense_crf(image, p, settings.crf)
    mask = np.where(q >= 0.5, FOREGROUND, np.where(q <= 0.5 * bg / fg, BACKGROUND, IGNORE)).astype(np.uint8)
    return mask, agreement_weight(mask, objectness, np.maximum(support, evidence))
