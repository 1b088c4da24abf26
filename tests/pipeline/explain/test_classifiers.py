"""Classifier loading: local files and torch's cache only, weights-only checkpoints, helpful errors."""
from __future__ import annotations

import pytest
import torch
import torchvision

from pipeline.explain.classifiers import ClassifierError, load_classifier
from tests.helpers.models import TINY_CNN


class Payload:
    """Any pickled object: a checkpoint carrying one must be refused."""


def test_torchvision_weights_come_from_torch_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), cache / url.rsplit("/", 1)[-1])
    classifier = load_classifier({"arch": "torchvision.resnet18"})
    assert classifier.cam_layer is classifier.net.net.layer4
    images = torch.rand(2, 3, 64, 64)
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(classifier.net(images), reference.eval()((images - mean) / std))


def test_missing_cached_weights_name_the_expected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ClassifierError, match="resnet18-.*pth.*nothing is downloaded"):
        load_classifier({"arch": "torchvision.resnet18"})


def test_timm_model_from_a_local_file(tmp_path):
    """The file's weights are the ones loaded: every tensor equal, and the same outputs as the saved network on
    the normalised images (another random initialisation would give other logits)."""
    import timm

    torch.manual_seed(123)
    net = timm.create_model("resnet10t", pretrained=False).eval()
    torch.save(net.state_dict(), tmp_path / "w.pth")
    torch.manual_seed(0)  # the loader's own initialisation differs from the saved one
    classifier = load_classifier({"arch": "timm.resnet10t", "weights": str(tmp_path / "w.pth")})
    loaded = classifier.net.net.state_dict()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in net.state_dict().items())
    images = torch.rand(2, 3, 64, 64)
    config = timm.data.resolve_data_config({}, model=net)
    mean, std = (torch.tensor(config[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    with torch.no_grad():
        torch.testing.assert_close(classifier.net(images), net((images - mean) / std))
    assert classifier.cam_layer is classifier.net.net.layer4


def test_checkpoints_with_pickled_objects_are_refused(tmp_path):
    torch.save({"state_dict": {}, "extra": Payload()}, tmp_path / "evil.pth")
    with pytest.raises(ClassifierError, match="pickled code is refused"):
        load_classifier({"arch": TINY_CNN, "weights": str(tmp_path / "evil.pth")})


def test_unknown_arch_lists_the_choices():
    with pytest.raises(ClassifierError, match="efficientnet_lite0"):
        load_classifier("resnet_9000")


def test_efficientnet_lite0_recognises_the_cat():
    from skimage import data

    classifier = load_classifier("efficientnet_lite0")
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        assert classifier.net(image).argmax().item() in range(281, 286)  # ImageNet's domestic cats


def test_efficientnet_lite_splits_at_its_cam_layer():
    """head(trunk(x)) is the network, bit for bit, and trunk(x) is what the CAM layer sees."""
    classifier = load_classifier("efficientnet_lite0")
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    seen = []
    handle = classifier.cam_layer.register_forward_hook(lambda _module, _inputs, output: seen.append(output))
    with torch.no_grad():
        logits, features = classifier.net(images), classifier.trunk(images)
        assert torch.equal(classifier.head(features), logits)
    handle.remove()
    assert torch.equal(seen[0], features)
