"""No-grad forward runtimes: ONNX Runtime agrees with eager, is exported once, and falls back when it disagrees."""
from __future__ import annotations

import pytest
import torch

from core.config import ConfigError
from explainers import GradCam, LayerCam, Lime, MultiScaleCam
from pipeline.explain.classifiers import load_classifier
from tests.helpers.models import TINY_CNN
from pipeline.explain.runtime import SplitNetwork, agreement, export_onnx, fingerprint, no_grad_forward, split_network

CPU = torch.device("cpu")


def tiny(seed: int):
    return load_classifier({"arch": TINY_CNN, "name": "cnn", "seed": seed, "classes": 10, "input_size": 32})


def test_onnxruntime_matches_eager_and_is_exported_once(tmp_path):
    classifier = tiny(1)
    forward, name = no_grad_forward(classifier, "auto", tmp_path, CPU)
    assert name == "onnxruntime"
    files = list(tmp_path.glob("*.onnx"))
    assert len(files) == 1 and fingerprint(classifier.net, 32) in files[0].name
    stamp = files[0].stat().st_mtime_ns
    images = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = classifier.net(images).softmax(1)
    got = forward(images).softmax(1)
    assert torch.equal(expected.argmax(1), got.argmax(1))
    assert float((expected - got).abs().max()) < 1e-5
    _, again = no_grad_forward(classifier, "onnxruntime", tmp_path, CPU)  # a second worker: reuses the file
    assert again == "onnxruntime" and files[0].stat().st_mtime_ns == stamp


def test_export_is_byte_identical(tmp_path):
    classifier = tiny(1)
    first = export_onnx(classifier.net, 32, tmp_path / "a.onnx").read_bytes()
    assert export_onnx(classifier.net, 32, tmp_path / "b.onnx").read_bytes() == first


def test_a_disagreeing_export_falls_back_to_eager_with_a_notice(tmp_path, capsys):
    wanted, other = tiny(1), tiny(2)
    # another network's graph under this network's cache name: the start-up check must catch it
    export_onnx(other.net, 32, tmp_path / f"cnn-{fingerprint(wanted.net, 32)}.onnx")
    forward, name = no_grad_forward(wanted, "auto", tmp_path, CPU)
    assert name == "eager"
    assert "disagrees with eager" in capsys.readouterr().err
    assert agreement(wanted.net, forward, 32)[0]


def test_eager_and_bad_names(tmp_path):
    assert no_grad_forward(tiny(1), "eager", tmp_path, CPU)[1] == "eager"
    assert not list(tmp_path.glob("*.onnx"))
    with pytest.raises(ConfigError, match="explain.runtime"):
        no_grad_forward(tiny(1), "tensorrt", tmp_path, CPU)


def test_lime_maps_through_onnxruntime_equal_eager(tmp_path):
    classifier = tiny(1)
    forward, _ = no_grad_forward(classifier, "onnxruntime", tmp_path, CPU)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([1, 7])
    lime = Lime(samples=32, segments=8, batch_size=8)
    eager = lime.explain(classifier.net, images, targets)
    fast = lime.explain(forward, images, targets)
    assert eager.abs().max() > 0
    torch.testing.assert_close(fast, eager, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", [GradCam, LayerCam, MultiScaleCam])
def test_cam_maps_through_the_onnxruntime_trunk_equal_eager(tmp_path, method):
    """The trunk on ONNX Runtime (any input size: multi-scale CAM feeds 16-64 px here), the head eager."""
    classifier = tiny(1)
    split = split_network(classifier, "auto", tmp_path, CPU)
    assert isinstance(split, SplitNetwork)
    assert [f.name for f in tmp_path.glob("*-trunk-*.onnx")] == [f"cnn-trunk-{fingerprint(classifier.trunk, 32)}.onnx"]
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    targets = torch.tensor([3, 8])
    eager = method(layer=classifier.cam_layer).explain(classifier.net, images, targets)
    fast = method(layer=split.layer).explain(split, images, targets)
    assert eager.abs().max() > 0
    torch.testing.assert_close(fast, eager, atol=1e-5 * float(eager.abs().max()), rtol=0)


def test_no_split_network_without_a_split_onnxruntime_or_agreement(tmp_path, capsys):
    classifier = tiny(1)
    assert split_network(classifier, "eager", tmp_path, CPU) is None
    unsplit = tiny(1)
    unsplit.trunk = unsplit.head = None
    assert split_network(unsplit, "auto", tmp_path, CPU) is None
    assert not list(tmp_path.glob("*.onnx"))
    # another network's trunk under this trunk's cache name: the start-up check must catch it
    export_onnx(tiny(2).trunk, 32, tmp_path / f"cnn-trunk-{fingerprint(classifier.trunk, 32)}.onnx", output="features",
                any_size=True)
    assert split_network(classifier, "auto", tmp_path, CPU) is None
    assert "the CAM explainers use the eager network" in capsys.readouterr().err
