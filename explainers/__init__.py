"""Saliency explainers: one file per method, chosen by name from a plain dict."""
from __future__ import annotations

import inspect

from explainers.base import Explainer
from explainers.cam import CAM_EXPLAINERS, CamExplainer, upsample_grid
from explainers.grad_cam import GradCam
from explainers.layer_cam import LayerCam
from explainers.lime_superpixels import Lime
from explainers.multi_scale import MultiScaleCam
from explainers.smooth_grad import SmoothGrad

# the CAM methods register themselves by name (explainers/cam.py); the others are listed here
EXPLAINERS: dict[str, type[Explainer]] = {**CAM_EXPLAINERS, "smooth_grad": SmoothGrad, "lime": Lime,
                                          "multi_scale_cam": MultiScaleCam}


def create_explainer(name: str, **params) -> Explainer:
    """Build the explainer called `name`; unknown names and parameters fail with the valid choices."""
    if name not in EXPLAINERS:
        raise KeyError(f"unknown explainer {name!r}; choose one of {sorted(EXPLAINERS)}")
    cls = EXPLAINERS[name]
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"explainer {name!r} got unknown parameter(s) {unknown}; it takes {sorted(accepted)}")
    missing = sorted(p for p, spec in accepted.items() if spec.default is inspect.Parameter.empty and p not in params)
    if missing:
        raise TypeError(f"explainer {name!r} needs parameter(s) {missing}")
    return cls(**params)


__all__ = ["EXPLAINERS", "CamExplainer", "Explainer", "GradCam", "LayerCam", "Lime", "MultiScaleCam", "SmoothGrad", "create_explainer",
           "upsample_grid"]
