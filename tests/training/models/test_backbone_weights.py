"""Loading ImageNet STDCNet weights from a local file: matching tensors load, the rest is reported."""
import pytest
import torch

from training.models import MODELS, count_parameters, create_model
from training.models.stdcnet import STDCNet, load_stdcnet_weights


def official_style_checkpoint(tmp_path, source: STDCNet):
    """What the official STDC-Seg release holds: {'state_dict': ...} with a classifier and one bad tensor."""
    state = dict(source.state_dict())
    state["linear.weight"] = torch.randn(1000, 1024)
    state["features.2.conv_list.0.conv.weight"] = torch.randn(7, 7, 1, 1)  # shape mismatch
    path = tmp_path / "STDCNet813M.tar"
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path


def test_round_trip_loads_matching_tensors_and_reports_skipped_ones(tmp_path):
    torch.manual_seed(0)
    source, target = STDCNet("stdc1"), STDCNet("stdc1")
    bad_name = "features.2.conv_list.0.conv.weight"
    before_bad = target.state_dict()[bad_name].clone()
    report = load_stdcnet_weights(target, official_style_checkpoint(tmp_path, source))

    assert report.skipped["linear.weight"] == "not in model"
    assert report.skipped[bad_name].startswith("shape")
    assert report.missing == [bad_name]
    assert torch.equal(target.state_dict()[bad_name], before_bad)
    for name in report.loaded:
        assert torch.equal(target.state_dict()[name], source.state_dict()[name]), name
    assert len(report.loaded) == len(source.state_dict()) - 1
    assert "1 shape mismatch" in report.summary()


def test_backbone_prefix_of_a_segmentation_checkpoint_is_understood(tmp_path):
    seg = create_model("stdc2_seg", 3)
    path = tmp_path / "seg.pt"
    torch.save(seg.state_dict(), path)
    report = load_stdcnet_weights(STDCNet("stdc2"), path)
    assert report.missing == []
    assert len(report.loaded) == len(STDCNet("stdc2").state_dict())


def test_create_model_loads_backbone_weights(tmp_path):
    torch.manual_seed(1)
    source = STDCNet("stdc2")
    path = tmp_path / "stdc2.pth"
    torch.save(source.state_dict(), path)
    model = create_model("pp_liteseg_b", 5, backbone_weights=path)
    assert torch.equal(model.backbone.features[3].conv_list[1].conv.weight, source.features[3].conv_list[1].conv.weight)


def test_wrong_backbone_file_is_a_clear_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="no tensor"):
        create_model("stdc1_seg", 3, backbone_weights=path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        create_model("stdc1_seg", 3, backbone_weights=tmp_path / "missing.pth")


def test_unknown_model_name_lists_the_valid_ones():
    with pytest.raises(KeyError, match="pp_liteseg_b.*stdc1_seg"):
        create_model("deeplab", 3)
    assert set(MODELS) == {"stdc1_seg", "stdc2_seg", "pp_liteseg_t", "pp_liteseg_b"}


def test_count_parameters_can_skip_frozen_ones():
    model = create_model("pp_liteseg_t", 3)
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == count_parameters(model) - count_parameters(model.backbone)
