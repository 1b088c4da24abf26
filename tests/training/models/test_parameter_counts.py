"""Parameter counts against published figures (sources and the arithmetic in docs/models.md)."""
import pytest

from training.models import count_parameters, create_model
from training.models.stdcnet import STDCNet

IMAGENET_CLASSES = 1000
# The ImageNet classifier STDCNet is published with and segmentation drops:
# conv_last ConvBNReLU(1024, 1024, 1x1), fc Linear(1024, 1024), BatchNorm1d(1024), linear Linear(1024, 1000).
CLASSIFIER_PARAMS = (1024 * 1024 + 2 * 1024) + 1024 * 1024 + 2 * 1024 + 1024 * IMAGENET_CLASSES


@pytest.mark.parametrize("variant,published_millions", [("stdc1", 8.44), ("stdc2", 12.47)])
def test_stdcnet_with_its_imagenet_classifier_matches_the_paper(variant, published_millions):
    total = count_parameters(STDCNet(variant)) + CLASSIFIER_PARAMS
    assert total / 1e6 == pytest.approx(published_millions, abs=0.005)


def inference_state_mib(model) -> float:
    """Float32 size of what an exported inference model keeps: weights and BN statistics, no aux heads."""
    floats = sum(v.numel() for k, v in model.state_dict().items()
                 if "num_batches_tracked" not in k and not k.startswith(("seg_heads.1.", "seg_heads.2.")))
    return floats * 4 / 2 ** 20


@pytest.mark.parametrize("name,published_mib", [("pp_liteseg_t", 31.0), ("pp_liteseg_b", 47.0)])
def test_pp_liteseg_cityscapes_model_size_matches_the_released_files(name, published_mib):
    assert inference_state_mib(create_model(name, 19)) == pytest.approx(published_mib, rel=0.02)


# Measured with: python -m training.models.count (see docs/models.md). No published figure exists
# for STDC-Seg's full network, so these pin the architecture against accidental change.
MEASURED = {("stdc1_seg", 19): 8_572_954, ("stdc2_seg", 19): 12_603_418,
            ("pp_liteseg_t", 19): 8_141_145, ("pp_liteseg_b", 19): 12_366_009}


@pytest.mark.parametrize("name,classes", sorted(MEASURED))
def test_measured_counts_are_stable(name, classes):
    assert count_parameters(create_model(name, classes)) == MEASURED[(name, classes)]


@pytest.mark.parametrize("name,head_inputs", [("stdc2_seg", (256, 64, 64)), ("pp_liteseg_b", (64, 64, 64))])
def test_1001_classes_add_exactly_the_wider_classifiers(name, head_inputs):
    extra = count_parameters(create_model(name, 1001)) - count_parameters(create_model(name, 19))
    assert extra == (1001 - 19) * sum(width + 1 for width in head_inputs)  # weights + bias per class
