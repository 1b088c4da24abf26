"""Tiny real networks for tests: a classifier the explain stage loads by dotted path, a segmenter."""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.explain.classifiers import Classifier, Part, load_weights
from training.models.outputs import SegOutputs

TINY_CNN = "tests.helpers.models:tiny_cnn"  # the `arch` of a model entry in a pipeline config
FAILING_CNN = "tests.helpers.models:failing_cnn"  # loads, then fails on its first forward as `fail:` says


class TinyCNN(nn.Module):
    """A small random-weight CNN: real convolutions and a real CAM layer, cheap on CPU."""

    def __init__(self, classes: int = 1000, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width * 2, width * 4, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(width * 4, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.mean(dim=(2, 3)))


def tiny_cnn(spec: dict) -> Classifier:
    """pipeline.explain.classifiers builder: seeded random weights, or `weights:` from a file; split at its CAM layer
    (the last ReLU) like the built-in classifiers, so the explain stage's split path runs in the tests."""
    torch.manual_seed(int(spec.get("seed", 0)))
    net = TinyCNN(classes=int(spec.get("classes", 1000)))
    if spec.get("weights"):
        net.load_state_dict(load_weights(spec["weights"]))
    return Classifier(spec["name"], net, int(spec.get("input_size", 64)), net.features[-1], trunk=net.features,
                      head=Part(net, "logits"))


class FailingCNN(TinyCNN):
    """A TinyCNN that breaks inside the worker the way real runs do: `raise` an error of a library
    (as a CUDA or codec error would), or `exit` its process (as a segfault or the OOM killer would)."""

    def __init__(self, fail: str, classes: int):
        super().__init__(classes=classes)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail == "exit":
            os._exit(3)
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def failing_cnn(spec: dict) -> Classifier:
    """pipeline.explain.classifiers builder for FailingCNN (run it with explain.runtime=eager: ONNX export would call it)."""
    net = FailingCNN(spec["fail"], int(spec.get("classes", 1000)))
    return Classifier(spec["name"], net, int(spec.get("input_size", 32)), net.features[-1])


class TinySegNet(nn.Module):
    """A real (small) segmentation network with the project's output contract and a `backbone`.

    Like the project's networks it returns SegOutputs in train mode and the main logits in eval mode;
    `forward_calls` counts passes (multi-scale inference tests).
    """

    def __init__(self, num_classes: int = 21, width: int = 16, stride: int = 4, aux_head: bool = False):
        super().__init__()
        layers, channels = [], 3
        for _ in range({2: 1, 4: 2}[stride]):
            layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, num_classes, 1)
        self.aux = nn.Conv2d(width, num_classes, 1) if aux_head else None
        self.forward_calls = 0

    def forward(self, images: torch.Tensor):
        self.forward_calls += 1
        features = self.backbone(images)
        heads = [self.head] if self.aux is None else [self.head, self.aux]
        logits = [F.interpolate(head(features), size=images.shape[-2:], mode="bilinear", align_corners=False)
                  for head in heads]
        return SegOutputs(logits=logits) if self.training else logits[0]


class TinyObjectNet(nn.Module):
    """A real (tiny) class-agnostic object model with ISNet's contract: normalised RGB in, [0, 1] map out.

    Bright regions are "objects": a stride-2 convolution averages brightness, an upsampling brings it
    back to the input size, a steep sigmoid turns it into a map (so its output can be checked by hand)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.Conv2d(3, 1, 2, stride=2, bias=True)
        with torch.no_grad():
            self.pool.weight.fill_(20.0 / 12)  # 20 x the mean of 3 channels x 2 x 2 pixels
            self.pool.bias.fill_(-2.0)  # object where the normalised brightness exceeds 0.1
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.up(self.pool(x)))


def tiny_object_model(path, input_size: int = 64):
    """Export TinyObjectNet to `path` (ONNX, fixed [1, 3, input_size, input_size] input named `input`, output
    `output`, as the ISNet file is) once; returns the path."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.onnx.export(TinyObjectNet().eval(), (torch.zeros(1, 3, input_size, input_size),), str(path),
                          dynamo=False, opset_version=17, input_names=["input"], output_names=["output"])
    return path
