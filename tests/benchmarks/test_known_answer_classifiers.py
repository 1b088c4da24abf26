"""The known-answer classifiers: each family learns on generated images, and a saved model loads
through pipeline.explain.classifiers like any other classifier (logits [B, K], a CAM layer inside the net)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.known_answer.generate import generate
from benchmarks.known_answer.models import KNOWN_ANSWER_ARCH, make_net, wrap
from benchmarks.known_answer.train_classifiers import load_split, train_all, train_steps
from core.config import load_config
from pipeline.explain.classifiers import ClassifierError, load_classifier

CONFIG = Path(__file__).resolve().parents[2] / "conf" / "known_answer.yaml"
TINY_MODELS = ("classifiers.models={ka_vgg: {family: vgg, width: 8}, ka_resnet: {family: resnet, width: 8}, "
               "ka_convmixer: {family: convmixer, width: 24, depth: 2, patch: 8, kernel: 5}}")
SIZE = 48


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> dict:
    """Three classes, 48 px images, four per class for training: enough for a few steps."""
    tmp = tmp_path_factory.mktemp("known_answer")
    config = load_config(CONFIG, [
        f"root={tmp / 'data'}", "classes=[cross, ring, star]", f"classification.image_size={SIZE}",
        "classification.per_class={train: 4, val: 2}", "segmentation.images={train: 1, val: 1, aug_extra: 0}",
        "segmentation.image_size=48", f"classifiers.output={tmp / 'classifiers'}", "classifiers.epochs=1",
        "classifiers.batch_size=6", TINY_MODELS,
    ])
    generate(config)
    return config


@pytest.mark.parametrize("name", ["ka_vgg", "ka_resnet", "ka_convmixer"])
def test_a_few_steps_lower_the_loss(tiny_world, name):
    images, labels, classes = load_split(Path(tiny_world["root"]), "train")
    assert images.shape == (12, 3, SIZE, SIZE) and classes == ["cross", "ring", "star"]
    spec = dict(tiny_world["classifiers"]["models"][name])
    torch.manual_seed(0)
    model = wrap(make_net(spec.pop("family"), len(classes), **spec))
    settings = {**tiny_world["classifiers"], "batch_size": 12, "lr": 0.01, "label_smoothing": 0.0}
    losses = train_steps(model, images, labels, settings, steps=12, seed=0, device=torch.device("cpu"))
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses


def test_trained_models_load_through_the_pipeline_and_are_cached(tiny_world):
    records = train_all(tiny_world)
    output = Path(tiny_world["classifiers"]["output"])
    images = torch.rand(2, 3, SIZE, SIZE)
    for name, record in records.items():
        assert record["class_names"] == ["cross", "ring", "star"] and 0.0 <= record["val_accuracy"] <= 1.0
        classifier = load_classifier({"arch": KNOWN_ANSWER_ARCH, "name": name, "weights": str(output / f"{name}.pt")})
        assert classifier.input_size == SIZE
        assert any(module is classifier.cam_layer for module in classifier.net.modules())
        seen = []
        hook = classifier.cam_layer.register_forward_hook(lambda module, args, out: seen.append(out.shape))
        logits = classifier.net(images)
        hook.remove()
        assert logits.shape == (2, 3) and torch.isfinite(logits).all()
        assert seen == [torch.Size([2, seen[0][1], SIZE // 8, SIZE // 8])]

    summary = json.loads((output / "summary.json").read_text())
    assert set(summary["models"]) == set(records) and 0.0 <= summary["ensemble_val_accuracy"] <= 1.0

    stamps = {name: (output / f"{name}.pt").stat().st_mtime_ns for name in records}
    assert train_all(tiny_world) == records
    assert stamps == {name: (output / f"{name}.pt").stat().st_mtime_ns for name in records}


def test_weights_of_another_family_or_missing_are_refused(tiny_world, tmp_path):
    with pytest.raises(ClassifierError, match="needs weights"):
        load_classifier({"arch": KNOWN_ANSWER_ARCH, "family": "resnet"})
    resnet = make_net("resnet", 3, width=8)
    torch.save(resnet.state_dict(), tmp_path / "net.pt")
    (tmp_path / "net.json").write_text(json.dumps({"family": "resnet", "arch": {"width": 8}, "classes": 3,
                                                   "input_size": SIZE}))
    with pytest.raises(ClassifierError, match="resnet net, not vgg"):
        load_classifier({"arch": KNOWN_ANSWER_ARCH, "family": "vgg", "weights": str(tmp_path / "net.pt")})
    assert load_classifier({"arch": KNOWN_ANSWER_ARCH, "family": "resnet", "weights": str(tmp_path / "net.pt")}).net(
        torch.rand(1, 3, SIZE, SIZE)).shape == (1, 3)
