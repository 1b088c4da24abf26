"""Three small classifier families for the known-answer world, different on purpose so an ensemble
of their explanations has real diversity: a plain VGG-like stack, a residual network, and a
ConvMixer (patch embedding, then isotropic depthwise/pointwise mixing at one resolution).

Every net ends in a block named `cam_block` (its last convolutional block, post-activation, at
1/8 of the input side) followed by global average pooling and a linear head.
"""
from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from pipeline.explain.classifiers import Classifier, ClassifierError, Normalized, load_weights


def conv_bn_relu(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(channels_out), nn.ReLU(inplace=True))


class PooledHead(nn.Module):
    def __init__(self, channels: int, classes: int):
        super().__init__()
        self.fc = nn.Linear(channels, classes)

    def forward(self, features):
        return self.fc(features.mean(dim=(2, 3)))


class PlainCNN(nn.Module):
    """VGG-like: 3x3 conv-BN-ReLU stages separated by max-pooling, no skip connections."""

    def __init__(self, classes: int, width: int = 16):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            conv_bn_relu(3, w, stride=2), nn.MaxPool2d(2),
            conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),
            conv_bn_relu(2 * w, 4 * w),
        )
        self.cam_block = conv_bn_relu(4 * w, 4 * w)
        self.head = PooledHead(4 * w, classes)

    def forward(self, x):
        return self.head(self.cam_block(self.features(x)))


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(channels_in, channels_out, stride),
                                  nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(channels_out))
        self.shortcut = nn.Identity() if stride == 1 and channels_in == channels_out else nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class SmallResNet(nn.Module):
    """ResNet-like: a strided stem, then basic residual blocks (the first two halve the resolution)."""

    def __init__(self, classes: int, width: int = 16):
        super().__init__()
        w = width
        self.stem = conv_bn_relu(3, w, stride=2)
        self.stages = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 4 * w, 2))
        self.cam_block = BasicBlock(4 * w, 4 * w, 1)
        self.head = PooledHead(4 * w, classes)

    def forward(self, x):
        return self.head(self.cam_block(self.stages(self.stem(x))))


class MixerBlock(nn.Module):
    """Spatial mixing by a large depthwise conv (residual), then channel mixing by a 1x1 conv."""

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.spatial = nn.Sequential(nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels),
                                     nn.GELU(), nn.BatchNorm2d(channels))
        self.channel = nn.Sequential(nn.Conv2d(channels, channels, 1), nn.GELU(), nn.BatchNorm2d(channels))

    def forward(self, x):
        return self.channel(x + self.spatial(x))


class ConvMixer(nn.Module):
    """ConvMixer: non-overlapping patch embedding, then `depth` mixer blocks at a single resolution."""

    def __init__(self, classes: int, width: int = 64, depth: int = 5, patch: int = 8, kernel: int = 5):
        super().__init__()
        self.embed = nn.Sequential(nn.Conv2d(3, width, patch, stride=patch), nn.GELU(), nn.BatchNorm2d(width))
        self.blocks = nn.Sequential(*(MixerBlock(width, kernel) for _ in range(depth - 1)))
        self.cam_block = MixerBlock(width, kernel)
        self.head = PooledHead(width, classes)

    def forward(self, x):
        return self.head(self.cam_block(self.blocks(self.embed(x))))


KNOWN_ANSWER_ARCH = "benchmarks.known_answer.models:build_classifier"  # `arch` of a model entry
FAMILIES = {"vgg": PlainCNN, "resnet": SmallResNet, "convmixer": ConvMixer}
ARCH_KEYS = ("width", "depth", "patch", "kernel")  # size options a config may give a family


def make_net(family: str, classes: int, **arch) -> nn.Module:
    if family not in FAMILIES:
        raise ValueError(f"unknown known-answer family {family!r}; choose one of {sorted(FAMILIES)}")
    return FAMILIES[family](classes, **{key: value for key, value in arch.items() if key in ARCH_KEYS})


# Inputs are [0, 1] images; this centres and scales them (the world's colours span the full range).
INPUT_MEAN, INPUT_STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def wrap(net: nn.Module):
    """The network as the explain stage sees it: [0, 1] images in, logits out."""
    return Normalized(net, INPUT_MEAN, INPUT_STD)


def record_path(weights: str | Path) -> Path:
    """The JSON written beside a weights file: family, sizes, classes and how it was trained."""
    return Path(weights).with_suffix(".json")


def build_classifier(spec: dict):
    """The explain stage's builder (model entry `arch: benchmarks.known_answer.models:build_classifier`):
    rebuild the net from the record beside `weights`, load the weights.

    Keys in the spec (family, classes, width, ..., input_size) override the record's; a `family` that
    differs from the record's is refused.
    """
    if not spec.get("weights"):
        raise ClassifierError(f"{spec['name']} needs weights: <file written by "
                              "benchmarks.known_answer.train_classifiers>")
    path = record_path(spec["weights"])
    record = json.loads(path.read_text()) if path.is_file() else {}
    family = spec.get("family", record.get("family"))
    if family is None:
        raise ClassifierError(f"{spec['name']}: no record {path}; give family: in the model entry")
    if record.get("family", family) != family:
        raise ClassifierError(f"{spec['weights']} holds a {record['family']} net, not {family}")
    arch = {**record.get("arch", {}), **{key: spec[key] for key in ARCH_KEYS if key in spec}}
    classes = spec.get("classes", record.get("classes"))
    input_size = spec.get("input_size", record.get("input_size"))
    if classes is None or input_size is None:
        raise ClassifierError(f"{spec['name']}: no record {path}; give classes: and input_size: in the model entry")
    net = make_net(family, int(classes), **arch)
    net.load_state_dict(load_weights(spec["weights"]))
    return Classifier(spec["name"], wrap(net), int(input_size), net.cam_block)
