"""Grad-CAM on the real pretrained EfficientNet-Lite0 looks at the object, not the background.

The polygons were drawn by hand around the object on the original photos (pixel coordinates, x, y),
before any Grad-CAM map was looked at; they are rough on purpose.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.draw import polygon2mask
from skimage.io import imread

from explainers import GradCam
from pipeline.explain.classifiers import load_classifier
from pipeline.index.sample import sample_path

OBJECTS = {
    # The espresso cup with its handle (top-1: 967 espresso); saucer and spoon left out.
    "coffee.png": [(172, 90), (195, 40), (250, 18), (330, 17), (390, 35), (410, 75), (405, 150), (392, 200),
                   (360, 235), (300, 250), (255, 250), (250, 300), (205, 305), (195, 260), (200, 235),
                   (185, 200), (175, 150)],
    # The camera and its tripod (top-1: 872 tripod); the cameraman left out.
    "camera.png": [(255, 135), (328, 135), (335, 200), (340, 305), (405, 505), (225, 505), (270, 320),
                   (270, 200)],
}


@pytest.fixture(scope="module")
def lite0():
    return load_classifier("efficientnet_lite0")


def load_rgb(name: str) -> np.ndarray:
    image = imread(sample_path("skimage", "data", name))
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3]


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_grad_cam_mass_concentrates_on_the_object(name, lite0):
    image = load_rgb(name)
    height, width = image.shape[:2]
    whole = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    inputs = F.interpolate(whole, size=(lite0.input_size,) * 2, mode="bilinear", antialias=True,
                           align_corners=False).clamp(0, 1)
    with torch.no_grad():
        top1 = lite0.net(inputs).argmax(dim=1)

    cam = GradCam(layer=lite0.cam_layer).explain(lite0.net, inputs, top1)
    cam = F.interpolate(cam[None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    positive = cam.clamp(min=0).numpy()
    inside = polygon2mask((height, width), [(y, x) for x, y in OBJECTS[name]])

    mass_share = positive[inside].sum() / positive.sum()
    area_share = inside.mean()
    assert 0.05 < area_share < 0.5  # the polygon is an object, not the whole photo
    assert mass_share >= 1.5 * area_share, f"{name}: {mass_share:.2f} of the mass on {area_share:.2f} of the area"
