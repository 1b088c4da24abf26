"""The PSSL weighted loss and STDC's masked detail loss, on tiny hand-built tensors."""
import math

import pytest
import torch
import torch.nn.functional as F

from training.loss import SegmentationLoss, detail_targets
from training.models import SegOutputs

IGNORE = 255


def one_head(logits, detail=None):
    return SegOutputs(logits=[logits], detail=detail)


def test_hand_computed_value_on_a_1x3x2x2_example():
    # pixel (0,0): background 0, w=1,   alpha 0.1, logits equal      -> CE = ln 3
    # pixel (0,1): class 1,      w=0.5, alpha 1,   p(class 1) = 1/2  -> CE = ln 2
    # pixel (1,0): class 2,      w=0    -> nothing;  pixel (1,1): ignore -> nothing
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1, 0, 1] = math.log(2)
    target = torch.tensor([[[0, 1], [2, IGNORE]]])
    weight = torch.tensor([[[1.0, 0.5], [0.0, 1.0]]])
    total, parts = SegmentationLoss(3, background_index=0)(one_head(logits), target, weight)
    expected = (0.1 * math.log(3) + 0.5 * math.log(2)) / (0.1 + 0.5)
    assert total.item() == pytest.approx(expected, rel=1e-6)
    assert parts == pytest.approx({"main": expected, "total": expected}, rel=1e-6)


def test_plain_fine_tuning_is_ordinary_mean_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 21, 8, 8)
    target = torch.randint(0, 21, (2, 8, 8))
    target[:, :2] = IGNORE
    total, _ = SegmentationLoss(21)(one_head(logits), target, None)
    assert total.item() == pytest.approx(F.cross_entropy(logits, target, ignore_index=IGNORE).item(), rel=1e-6)


def test_weight_zero_and_ignore_pixels_contribute_nothing():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 4, 4)
    target = torch.randint(0, 4, (1, 4, 4))
    target[0, 0, :] = IGNORE
    weight = torch.rand(1, 4, 4) * 0.9 + 0.1
    weight[0, 1, :] = 0.0
    loss = SegmentationLoss(4, background_index=3)
    before, _ = loss(one_head(logits), target, weight)

    changed = logits.clone().requires_grad_(True)
    with torch.no_grad():
        changed[0, :, :2, :] = torch.randn(4, 2, 4) * 100  # rows 0 (ignore) and 1 (weight 0)
    after, _ = loss(one_head(changed), target, weight)
    after.backward()
    assert after.item() == pytest.approx(before.item(), rel=1e-6)
    assert changed.grad[0, :, :2].abs().max() == 0
    assert changed.grad[0, :, 2:].abs().max() > 0


def test_all_zero_weight_gives_zero_not_nan_and_still_backpropagates():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, 1], [2, IGNORE]]])
    total, parts = SegmentationLoss(3)(one_head(logits), target, torch.zeros(1, 2, 2))
    total.backward()
    assert total.item() == 0.0 and parts["total"] == 0.0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().max() == 0


@pytest.mark.parametrize("alpha", [0.1, 0.5, 1.0])
def test_background_alpha_scales_background_pixels_only(alpha):
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 1, 0, 1] = 2.0  # class-1 pixel is easy, background pixel is uncertain
    target = torch.tensor([[[0, 1]]])
    ce_bg, ce_fg = math.log(2), -F.log_softmax(torch.tensor([0.0, 2.0]), 0)[1].item()
    total, _ = SegmentationLoss(2, background_index=0, background_alpha=alpha)(one_head(logits), target)
    assert total.item() == pytest.approx((alpha * ce_bg + ce_fg) / (alpha + 1), rel=1e-6)


def test_head_weights_combine_every_head():
    torch.manual_seed(0)
    heads = [torch.randn(1, 3, 4, 4) for _ in range(3)]
    target = torch.randint(0, 3, (1, 4, 4))
    total, parts = SegmentationLoss(3, head_weights=[1.0, 0.5, 0.25])(SegOutputs(heads), target)
    assert set(parts) == {"main", "aux1", "aux2", "total"}
    assert total.item() == pytest.approx(parts["main"] + 0.5 * parts["aux1"] + 0.25 * parts["aux2"], rel=1e-6)
    with pytest.raises(ValueError, match="2 head_weights for 3 heads"):
        SegmentationLoss(3, head_weights=[1.0, 1.0])(SegOutputs(heads), target)


def label_with_square_and_ignore_band():
    label = torch.zeros(1, 16, 16, dtype=torch.long)
    label[0, 4:12, 4:12] = 7  # a real object: its outline is a boundary
    label[0, :, 14:] = IGNORE  # an ignore band on the right next to background
    return label


def test_detail_targets_follow_class_boundaries_and_never_ignore_pixels():
    label = label_with_square_and_ignore_band()
    boundary, valid = detail_targets(label, IGNORE)
    ignore = (label == IGNORE).unsqueeze(1)
    assert boundary[ignore].sum() == 0
    assert not valid[ignore].any() and valid[~ignore].all()
    assert boundary[0, 0, 4, 4:12].all()  # the object's top edge
    assert boundary[0, 0, :, 12:].sum() == 0  # background next to the ignore band is no boundary
    assert boundary[0, 0, 0, :].sum() == 0  # nor is the image border


def test_detail_loss_ignores_logits_on_ignore_pixels():
    label = label_with_square_and_ignore_band()
    logits = torch.zeros(1, 7 + 1, 16, 16)
    detail = torch.randn(1, 1, 16, 16)
    loss = SegmentationLoss(8, detail_weight=1.0)
    _, before = loss(one_head(logits, detail), label)
    changed = detail.clone()
    changed[0, 0, :, 14:] = 50.0
    _, after = loss(one_head(logits, changed), label)
    assert after["detail"] == pytest.approx(before["detail"], rel=1e-6)
    _, no_detail = SegmentationLoss(8, detail_weight=0.0)(one_head(logits, detail), label)
    assert "detail" not in no_detail


@pytest.mark.parametrize("kwargs,call,message", [
    ({"num_classes": 1001}, None, "ignore_index 255 is a real class id"),
    ({"num_classes": 3, "background_index": 3}, None, "background_index 3"),
    ({"num_classes": 3}, {"target": torch.tensor([[[0, 5]]])}, "class id 5"),
    ({"num_classes": 3}, {"weight": torch.tensor([[[0.5, 2.0]]])}, r"weight must lie in \[0, 1\]"),
    ({"num_classes": 3}, {"weight": torch.ones(1, 1, 2, dtype=torch.uint8)}, "float tensor"),
])
def test_bad_input_gets_a_clear_error(kwargs, call, message):
    with pytest.raises(ValueError, match=message):
        loss = SegmentationLoss(**kwargs)
        call = call or {}
        target = call.get("target", torch.tensor([[[0, 1]]]))
        loss(one_head(torch.zeros(1, 3, 1, 2)), target, call.get("weight"))


def two_class_logits(probabilities_of_class_1: list[float]) -> torch.Tensor:
    """[1, 2, 1, P] logits whose softmax gives class 1 exactly these probabilities."""
    p = torch.tensor(probabilities_of_class_1, dtype=torch.float64)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))]).view(1, 2, 1, -1).float()


def test_ohem_hand_computed_keeps_the_hard_pixels_and_at_least_min_kept():
    # Six pixels of class 1 with p(class 1) = 0.1, 0.3, 0.6, 0.8, 0.9, 0.95; one ignored pixel.
    probabilities = [0.1, 0.3, 0.6, 0.8, 0.9, 0.95, 0.5]
    logits = two_class_logits(probabilities)
    target = torch.tensor([[[1, 1, 1, 1, 1, 1, IGNORE]]])
    ce = [-math.log(p) for p in probabilities[:6]]

    def loss(thresh, min_kept):
        return SegmentationLoss(2, ohem=(thresh, min_kept))(one_head(logits), target)[0].item()

    # min_kept 2: its 2nd smallest p (0.3) is below the threshold 0.7, so the cut stays 0.7: 0.1, 0.3, 0.6 count.
    assert loss(0.7, 2) == pytest.approx(sum(ce[:3]) / 3, rel=1e-5)
    # min_kept 4: the 4th smallest p is 0.8 > 0.7, the cut rises to 0.8 and counts p < 0.8 (strictly): 3 pixels.
    assert loss(0.7, 4) == pytest.approx(sum(ce[:3]) / 3, rel=1e-5)
    # min_kept 5: cut 0.9, so 0.8 joins; the ignored pixel never counts, however easy or hard.
    assert loss(0.7, 5) == pytest.approx(sum(ce[:4]) / 4, rel=1e-5)
    # No more labelled pixels than min_kept: every one counts (plain mean cross-entropy).
    assert loss(0.7, 6) == pytest.approx(sum(ce) / 6, rel=1e-5)
    # min_kept 0: the threshold alone.
    assert loss(0.5, 0) == pytest.approx(sum(ce[:2]) / 2, rel=1e-5)


def test_ohem_chooses_per_head_and_passes_no_gradient_through_the_choice():
    easy, hard = two_class_logits([0.95, 0.95, 0.2]), two_class_logits([0.2, 0.2, 0.95])
    easy.requires_grad_(True)
    target = torch.ones(1, 1, 3, dtype=torch.long)
    total, parts = SegmentationLoss(2, ohem=(0.7, 1))(SegOutputs(logits=[easy, hard]), target)
    assert parts["main"] == pytest.approx(-math.log(0.2), rel=1e-5)  # only its third pixel is hard
    assert parts["aux1"] == pytest.approx(-math.log(0.2), rel=1e-5)  # its first two
    total.backward()
    assert easy.grad[0, :, 0, :2].abs().max() == 0 and easy.grad[0, :, 0, 2].abs().max() > 0
