"""The dense CRF (Kraehenbuehl & Koltun 2011, pydensecrf2) over a photo and a foreground probability.

Shared by the CRF refinement of the consensus (pipeline/fuse/rules.py) and the object unary rule
(pipeline/fuse/object_rules.py), which differ only in the unary they hand it.
"""
from __future__ import annotations

import numpy as np


def consensus_probability(consensus: np.ndarray, fg: float, temperature: float) -> np.ndarray:
    """The consensus as a foreground probability: a logistic around tau_fg (the decision boundary maps to 0.5)."""
    return 1.0 / (1.0 + np.exp(-(consensus.astype(np.float64) - fg) / temperature))


def dense_crf(image: np.ndarray, p_fg: np.ndarray, params) -> np.ndarray:
    """float32 [S, S] foreground probability after the CRF; `params` is the fuse.crf section (kernel widths
    `*_xy` as fractions of the map side)."""
    import pydensecrf.densecrf as dcrf  # a compiled extension: only loaded when a CRF is configured

    height, width = p_fg.shape
    probabilities = np.clip(np.stack([1.0 - p_fg, p_fg]), 1e-4, 1.0 - 1e-4)
    crf = dcrf.DenseCRF2D(width, height, 2)
    crf.setUnaryEnergy(np.ascontiguousarray(-np.log(probabilities).reshape(2, -1), np.float32))
    crf.addPairwiseGaussian(sxy=params.smooth_xy * width, compat=params.smooth_weight)
    crf.addPairwiseBilateral(sxy=params.appearance_xy * width, srgb=params.appearance_rgb,
                             rgbim=np.array(image, np.uint8, order="C"), compat=params.appearance_weight)
    q = np.asarray(crf.inference(int(params.iterations)), np.float32)
    return q[1].reshape(height, width)
