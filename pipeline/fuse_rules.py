"""The optional parts of the fuse rule that real photos asked for (docs/fusion.md, "Real photos").

- smoothing: a Gaussian blur of chosen explainers' maps before they are normalised. SmoothGrad's
  maps are pixel-scale noise around the object; blurred, they vote for regions instead of pixels.
- per-image thresholds: Otsu's split of each image's consensus instead of one global tau_fg. Objects
  fill 2 % of one photo and 80 % of the next; a fixed tau cannot suit both.
- refinement: a dense CRF (pydensecrf2) that pulls the consensus towards the photo's colour edges.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

THRESHOLD_RULES = ("fixed", "otsu")
REFINEMENTS = ("none", "crf")
HISTOGRAM_BINS = 64


def smooth_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """float16 [B, S, S] maps blurred per image with a Gaussian of `sigma` x S pixels (0: unchanged).

    Sizes are fractions of the map side, so one setting means the same on 96 px and 224 px maps."""
    if sigma <= 0:
        return maps
    pixels = sigma * maps.shape[-1]
    blurred = ndimage.gaussian_filter(maps.astype(np.float32), sigma=(0, pixels, pixels), mode="nearest")
    return blurred.astype(np.float16)


def otsu_threshold(values: np.ndarray, low: float, high: float) -> float:
    """Otsu's threshold of values in [0, 1] (the between-class variance maximised over a histogram),
    clipped to [low, high] so a photo whose consensus is flat cannot split at noise."""
    counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    mass_low = np.cumsum(counts * centres)
    mean_low = mass_low / np.maximum(weight_low, 1)
    mean_high = (mass_low[-1] - mass_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(np.clip(edges[1:][int(np.argmax(between))], low, high))


def image_thresholds(consensus: np.ndarray, ok: np.ndarray, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """float32 [B] tau_fg and tau_bg for consensus [B, P]: the fixed pair, or Otsu's split per image with
    tau_bg keeping the configured ratio bg_threshold / fg_threshold to it."""
    b = len(consensus)
    fg = np.full(b, settings["fg_threshold"], np.float32)
    ratio = settings["bg_threshold"] / settings["fg_threshold"]
    if settings["threshold_rule"] == "otsu":
        low, high = settings["otsu_range"]
        for i in np.flatnonzero(ok):
            fg[i] = otsu_threshold(consensus[i], low, high)
    return fg, (fg * ratio).astype(np.float32)


def crf_probability(consensus: np.ndarray, fg: float, temperature: float) -> np.ndarray:
    """The consensus as a foreground probability: a logistic around tau_fg (the decision boundary maps to 0.5)."""
    return 1.0 / (1.0 + np.exp(-(consensus.astype(np.float64) - fg) / temperature))


def crf_consensus(image: np.ndarray, consensus: np.ndarray, fg: float, settings: dict,
                  p_fg: np.ndarray | None = None) -> np.ndarray:
    """float32 [S, S] foreground probability after a dense CRF over the photo (uint8 [S, S, 3]).

    The unary is `p_fg`, by default a logistic of the consensus around this image's tau_fg
    (`crf_probability`; `crf.temperature` sets how sure the consensus is); the pairwise terms are the
    standard smoothness and appearance kernels of Kraehenbuehl & Koltun 2011, their widths `*_xy`
    given as fractions of the map side.
    """
    import pydensecrf.densecrf as dcrf  # a compiled extension: only loaded when refinement is on

    params = settings["crf"]
    height, width = consensus.shape
    if p_fg is None:
        p_fg = crf_probability(consensus, fg, params["temperature"])
    probabilities = np.clip(np.stack([1.0 - p_fg, p_fg]), 1e-4, 1.0 - 1e-4)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(probabilities).reshape(2, -1), np.float32))
    crf.addPairwiseGaussian(sxy=params["smooth_xy"] * width, compat=params["smooth_weight"])
    crf.addPairwiseBilateral(sxy=params["appearance_xy"] * width, srgb=params["appearance_rgb"],
                             rgbim=np.array(image, np.uint8, order="C"), compat=params["appearance_weight"])
    q = np.asarray(crf.inference(int(params["iterations"])), np.float32)
    return q[1].reshape(height, width)
