"""The confusion-matrix evaluator against hand-computed values, and flip / multi-scale inference."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from core.schema import EvalSection
from tests.helpers.models import TinySegNet
from tests.helpers.voc import CLASS_COLOURS, EVAL_TRANSFORMS, MEAN, STD, write_voc
from training.evaluate import (ConfusionMatrix, InferenceMode, evaluate_dataset, forward_view, inference_modes,
                               predict_modes)
from training.palette import VOC_CLASSES
from training.voc import VOCSegmentation

PAPER_MODES = [InferenceMode("single"), InferenceMode("flip", (1.0,), True),
               InferenceMode("ms_flip", (0.75, 1.0, 1.25), True)]


class ColourOracle(nn.Module):
    """Scores each class by minus the squared distance of the pixel to the class's colour (a 1x1 conv)."""

    def __init__(self, num_classes: int = 21):
        super().__init__()
        self.classifier = nn.Conv2d(3, num_classes, 1)
        with torch.no_grad():
            self.classifier.weight.zero_()
            self.classifier.bias.fill_(-1e4)  # classes without a colour never win
            for class_id, colour in CLASS_COLOURS.items():
                centre = (torch.tensor(colour) / 255.0 - torch.tensor(MEAN)) / torch.tensor(STD)
                self.classifier.weight[class_id, :, 0, 0] = 2 * centre
                self.classifier.bias[class_id] = -(centre ** 2).sum()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images)


def test_confusion_matrix_iou_and_accuracy_match_hand_computed_values():
    matrix = ConfusionMatrix(num_classes=4)
    target = torch.tensor([[0, 0, 1], [1, 2, 255]])
    prediction = torch.tensor([[0, 1, 1], [2, 2, 0]])  # the last pixel is ignored whatever it predicts
    matrix.update(prediction, target)
    assert matrix.matrix.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    iou = matrix.iou()
    assert iou[:3].tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert math.isnan(iou[3])  # class 3 is in neither ground truth nor prediction: left out of the mean
    assert matrix.mean_iou() == pytest.approx(4 / 9)
    assert matrix.pixel_accuracy() == pytest.approx(3 / 5)
    # A class that occurs only in the prediction counts, with IoU 0 (TP + FP + FN > 0).
    matrix.update(torch.tensor([[3]]), torch.tensor([[0]]))
    assert matrix.iou()[3].item() == 0.0
    assert matrix.iou()[0].item() == pytest.approx(1 / 3)
    assert matrix.mean_iou() == pytest.approx((1 / 3 + 1 / 3 + 1 / 2 + 0) / 4)


def test_confusion_matrix_accumulates_over_images_not_per_image_means():
    matrix = ConfusionMatrix(num_classes=2)
    matrix.update(torch.tensor([1, 1, 1, 1]), torch.tensor([1, 1, 1, 1]))  # image IoU of class 1: 1
    matrix.update(torch.tensor([0, 1]), torch.tensor([1, 1]))  # image IoU of class 1: 1/2
    assert matrix.iou()[1].item() == pytest.approx(5 / 6)  # 5 TP / 6, not the mean of per-image IoUs


def test_confusion_matrix_rejects_bad_input():
    matrix = ConfusionMatrix(num_classes=3)
    with pytest.raises(ValueError, match="differ in shape"):
        matrix.update(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="target holds values outside"):
        matrix.update(torch.zeros(2), torch.tensor([0, 7]))


def test_the_configs_modes_become_inference_modes():
    section = EvalSection(modes=[{"name": "single", "scales": [1.0]},
                                 {"name": "ms_flip", "scales": [0.75, 1.0, 1.25], "flip": True}])
    modes = inference_modes(section.modes)
    assert modes[1] == InferenceMode("ms_flip", (0.75, 1.0, 1.25), True)
    assert len(modes[1].views) == 6
    with pytest.raises(ValueError, match="greater than 0"):
        EvalSection(modes=[{"name": "bad", "scales": [0.0]}])


def test_every_view_gives_logits_at_the_input_size():
    torch.manual_seed(0)
    model = TinySegNet().eval()
    images = torch.randn(2, 3, 37, 53)  # odd sizes: padding to the stride and cropping back must be exact
    for scale in (0.75, 1.0, 1.25):
        for flipped in (False, True):
            probabilities = forward_view(model, images, scale, flipped, size_divisor=32).softmax(1)
            assert probabilities.shape == (2, 21, 37, 53)
            assert torch.allclose(probabilities.sum(1), torch.ones(2, 37, 53), atol=1e-5)


def test_flip_mode_is_flip_equivariant_and_views_are_shared():
    torch.manual_seed(0)
    model = TinySegNet().eval()
    images = torch.randn(1, 3, 40, 56)
    mirrored = predict_modes(model, images.flip(-1), PAPER_MODES)
    model.forward_calls = 0
    plain = predict_modes(model, images, PAPER_MODES)
    assert model.forward_calls == 6  # (0.75, 1.0, 1.25) x (plain, flipped), shared by all three modes
    assert torch.allclose(plain["flip"].flip(-1), mirrored["flip"], atol=1e-6)
    assert torch.allclose(plain["ms_flip"].flip(-1), mirrored["ms_flip"], atol=1e-6)
    assert not torch.allclose(plain["single"].flip(-1), mirrored["single"], atol=1e-3)  # a random net is not
    expected_flip = (forward_view(model, images, 1.0, False).softmax(1)
                     + forward_view(model, images, 1.0, True).softmax(1)) / 2
    assert torch.allclose(plain["flip"], expected_flip, atol=1e-6)
    logits = predict_modes(model, images, PAPER_MODES[1:2], average="logits")["flip"]
    expected_logits = (forward_view(model, images, 1.0, False) + forward_view(model, images, 1.0, True)) / 2
    assert torch.allclose(logits, expected_logits, atol=1e-6)  # PaddleSeg 2.8's averaging


def test_evaluating_an_oracle_on_generated_voc_gives_perfect_scores(tmp_path):
    dataset = VOCSegmentation(write_voc(tmp_path / "data", num_images=4), "val", "SegmentationClass",
                              EVAL_TRANSFORMS)
    result = evaluate_dataset(ColourOracle(), dataset, PAPER_MODES, VOC_CLASSES, num_samples=2)
    assert result.num_images == 4 and len(result.samples) == 2
    labelled = sum(int((dataset.raw(i)[1] != 255).sum()) for i in range(4))
    assert int(result.matrices["single"].matrix.sum()) == labelled
    assert result.matrices["single"].mean_iou() == 1.0
    assert result.matrices["ms_flip"].mean_iou() > 0.9  # rescaling blurs edges a little
    json_path, markdown_path = result.write(tmp_path / "out")
    saved = json.loads(json_path.read_text())
    single = saved["modes"]["single"]
    assert single["mIoU"] == 1.0 and single["per_class_iou"]["aeroplane"] == 1.0
    assert single["per_class_iou"]["bus"] is None  # never in ground truth nor prediction
    table = markdown_path.read_text()
    assert "| **mIoU** | 100.00 |" in table and "| aeroplane | 100.00 |" in table
    assert table.count("\n") == 2 + 2 + 21
