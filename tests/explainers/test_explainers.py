"""Explainers on real small torch models, real Captum and real lime, checked against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lime import lime_image
from torch import nn

from explainers import EXPLAINERS, GradCam, LayerCam, Lime, MultiScaleCam, SmoothGrad, create_explainer
from pipeline.explain.classifiers import load_classifier
from tests.helpers.models import TINY_CNN

SIZE = 64


@pytest.fixture(scope="module")
def tiny():
    return load_classifier({"arch": TINY_CNN})


@pytest.fixture(scope="module")
def images():
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


TARGETS = torch.tensor([3, 7])


def cheap_params(name, classifier):
    """Few samples, so every method runs in well under a second on the tiny net."""
    return {"grad_cam": {"layer": classifier.cam_layer},
            "layer_cam": {"layer": classifier.cam_layer},
            "multi_scale_cam": {"layer": classifier.cam_layer, "scales": [1.0, 0.5]},
            "smooth_grad": {"samples": 4, "batch_size": 3},
            "lime": {"samples": 24, "segments": 16, "batch_size": 10}}[name]


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_maps_are_raw_float32_on_the_input_device_and_size(name, tiny, images):
    maps = create_explainer(name, **cheap_params(name, tiny)).explain(tiny.net, images, TARGETS)
    assert maps.shape == (2, SIZE, SIZE)
    assert maps.dtype == torch.float32 and maps.device == images.device
    assert torch.isfinite(maps).all() and maps.abs().amax(dim=(1, 2)).min() > 0


@pytest.mark.parametrize("name", sorted(EXPLAINERS))
def test_repeated_calls_are_bit_identical_and_leave_global_rngs_alone(name, tiny, images):
    explainer = create_explainer(name, **cheap_params(name, tiny))
    first = explainer.explain(tiny.net, images, TARGETS)
    torch.rand(5), np.random.rand(5)  # disturb the global generators between the calls
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    second = explainer.explain(tiny.net, images, TARGETS)
    assert torch.equal(first, second)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


@pytest.mark.parametrize("name", ["smooth_grad", "lime"])
def test_an_images_map_does_not_depend_on_its_batch_mates(name, tiny, images):
    explainer = create_explainer(name, **cheap_params(name, tiny))
    batched = explainer.explain(tiny.net, images, TARGETS)
    alone = explainer.explain(tiny.net, images[1:], TARGETS[1:])
    assert torch.equal(batched[1], alone[0])


def test_a_different_seed_gives_a_different_smooth_grad(tiny, images):
    maps = [SmoothGrad(samples=4, seed=seed).explain(tiny.net, images, TARGETS) for seed in (0, 1)]
    assert not torch.equal(*maps)


def test_factory_names_the_valid_choices():
    with pytest.raises(KeyError, match="grad_cam.*layer_cam.*lime.*multi_scale_cam.*smooth_grad"):
        create_explainer("integrated_gradients")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['nsamples'\].*samples"):
        create_explainer("smooth_grad", nsamples=3)
    with pytest.raises(TypeError, match=r"needs parameter\(s\) \['layer'\]"):
        create_explainer("grad_cam")
    assert isinstance(create_explainer("lime", samples=10), Lime)


def test_bad_inputs_fail_with_a_message_naming_the_problem(tiny, images):
    explainer = SmoothGrad(samples=2)
    with pytest.raises(ValueError, match=r"images must be \[B, 3, H, W\]"):
        explainer.explain(tiny.net, images[0], TARGETS)
    with pytest.raises(ValueError, match="targets must be"):
        explainer.explain(tiny.net, images, TARGETS[:1])
    with pytest.raises(ValueError, match="samples >= 1"):
        SmoothGrad(samples=0)
    with pytest.raises(TypeError, match="layer=<nn.Module>"):
        GradCam(layer="features")


class ConvPoolLinear(nn.Module):
    """conv -> relu -> global average pool -> linear: the net for which Grad-CAM reduces to CAM."""

    def __init__(self, channels=5, classes=4):
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture
def pooled_case():
    """A ConvPoolLinear net, 12x12 images, targets, and its [B, K, H, W] features at full resolution
    (so the CAM explainers' upsampling is the identity)."""
    torch.manual_seed(0)
    net = ConvPoolLinear().eval()
    images = torch.rand(2, 3, 12, 12)
    return net, images, torch.tensor([1, 3]), net.relu(net.conv(images))


def test_grad_cam_equals_the_cam_identity_on_a_pooled_linear_net(pooled_case):
    net, images, targets, features = pooled_case
    maps = GradCam(layer=net.relu).explain(net, images, targets)
    # d logit_t / d A_k(i, j) = w[t, k] / (H W) everywhere, so alpha_k = w[t, k] / (H W).
    weights = net.fc.weight[targets]  # [B, K]
    expected = torch.relu(torch.einsum("bk,bkhw->bhw", weights, features)) / (12 * 12)
    assert expected.abs().max() > 0
    torch.testing.assert_close(maps, expected.detach(), rtol=1e-5, atol=1e-7)


def test_layer_cam_weights_each_activation_by_its_own_positive_gradient(pooled_case):
    net, images, targets, features = pooled_case
    maps = LayerCam(layer=net.relu).explain(net, images, targets)
    # d logit_t / d A_k(i, j) = w[t, k] / (H W): only channels with a positive class weight count.
    weights = torch.relu(net.fc.weight[targets]) / (12 * 12)
    expected = torch.relu(torch.einsum("bk,bkhw->bhw", weights, features))
    assert expected.abs().max() > 0
    torch.testing.assert_close(maps, expected.detach(), rtol=1e-5, atol=1e-7)


def test_multi_scale_cam_at_one_scale_without_flip_is_its_method(tiny, images):
    for method, cls in (("grad_cam", GradCam), ("layer_cam", LayerCam)):
        single = cls(layer=tiny.cam_layer).explain(tiny.net, images, TARGETS)
        wrapped = MultiScaleCam(layer=tiny.cam_layer, method=method, scales=[1.0], flip=False)
        torch.testing.assert_close(wrapped.explain(tiny.net, images, TARGETS), single)


def test_multi_scale_cam_with_flip_is_mirror_symmetric_and_sums_its_scales(tiny, images):
    explainer = MultiScaleCam(layer=tiny.cam_layer, scales=[1.0, 0.5], flip=True)
    maps = explainer.explain(tiny.net, images, TARGETS)
    mirrored = explainer.explain(tiny.net, images.flip(-1), TARGETS)
    torch.testing.assert_close(maps, mirrored.flip(-1), rtol=1e-4, atol=1e-6)
    full = MultiScaleCam(layer=tiny.cam_layer, scales=[1.0], flip=True).explain(tiny.net, images, TARGETS)
    half = MultiScaleCam(layer=tiny.cam_layer, scales=[0.5], flip=True).explain(tiny.net, images, TARGETS)
    torch.testing.assert_close(maps, full + half)
    with pytest.raises(ValueError, match="method must be one of"):
        MultiScaleCam(layer=tiny.cam_layer, method="grad_cam_pp")
    with pytest.raises(ValueError, match="scales must be positive"):
        MultiScaleCam(layer=tiny.cam_layer, scales=[0.0])


def test_grad_cam_upsamples_a_coarse_layer_to_the_input_size(tiny, images):
    maps = GradCam(layer=tiny.cam_layer).explain(tiny.net, images, TARGETS)
    assert maps.shape == (2, SIZE, SIZE) and maps.min() >= 0  # bilinear never rings below the relu'd values
    assert len(torch.unique(maps[0])) > (SIZE // 8) ** 2  # smooth, not 8x8 blocks


def test_smooth_grad_without_noise_is_the_absolute_gradient_summed_over_channels(tiny, images):
    maps = SmoothGrad(samples=3, stdev=0.0).explain(tiny.net, images, TARGETS)
    inputs = images.clone().requires_grad_()
    tiny.net(inputs).gather(1, TARGETS[:, None]).sum().backward()
    torch.testing.assert_close(maps, inputs.grad.abs().sum(dim=1), rtol=1e-5, atol=1e-8)


class RegionTexture(nn.Module):
    """Class 0's logit is the pixel variance inside one quadrant; nothing else in the image matters."""

    def __init__(self, region):
        super().__init__()
        self.region = region

    def forward(self, x):
        inside = x[(slice(None), slice(None)) + self.region]
        texture = inside.flatten(1).var(dim=1)
        return torch.stack([40 * (texture - texture.detach().new_tensor(0.04)), torch.zeros_like(texture)], dim=1)


def textured_image(size=SIZE, seed=3):
    """Smooth colour blobs plus fine grain, so SLIC finds real regions and hiding one changes the variance."""
    generator = torch.Generator().manual_seed(seed)
    blobs = F.interpolate(torch.rand(1, 3, 6, 6, generator=generator), size=(size, size), mode="bicubic")
    return (0.9 * blobs + 0.1 * torch.rand(1, 3, size, size, generator=generator)).clamp(0, 1)


def test_lime_puts_its_largest_weights_on_the_region_the_model_looks_at():
    region = (slice(0, SIZE // 2), slice(0, SIZE // 2))
    explainer = Lime(samples=200, segments=16, compactness=20, batch_size=50)  # ~15 superpixels of ~16x16
    maps = explainer.explain(RegionTexture(region), textured_image(), torch.tensor([0]))[0]
    inside = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    inside[region] = True
    top = maps == maps.max()
    assert inside[top].float().mean() > 0.5  # the best superpixel lies mostly in the region
    assert maps[inside].mean() > 4 * maps[~inside].abs().mean()


def test_lime_on_device_neighbourhood_matches_lime_own_explain_instance():
    """Same seed, same superpixels, same float32 pixels and model batches: lime's own loop gives the same map."""
    net = load_classifier({"arch": TINY_CNN, "classes": 10}).net
    image, target, seed = textured_image(), 4, 7
    explainer = Lime(samples=40, segments=12, batch_size=16, seed=seed)
    ours = explainer.explain(net, image, torch.tensor([target]))[0].numpy()

    def classify_hwc(batch):
        with torch.no_grad():
            return net(torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()).softmax(dim=1).double().numpy()

    reference = lime_image.LimeImageExplainer(kernel_width=0.25, feature_selection="none", random_state=seed)
    explanation = reference.explain_instance(
        image[0].permute(1, 2, 0).numpy(), classify_hwc, labels=(target,), top_labels=None,
        num_samples=40, batch_size=16, segmentation_fn=explainer.segment, random_seed=seed)
    weights = np.zeros(explanation.segments.max() + 1, dtype=np.float32)
    for segment, weight in explanation.local_exp[target]:
        weights[segment] = weight
    assert np.abs(weights).max() > 0
    np.testing.assert_array_equal(ours, weights[explanation.segments])


class CountingForward:
    """A real network behind a callable that records the size of every batch it is handed."""

    def __init__(self, net):
        self.net, self.batch_sizes = net, []

    def __call__(self, batch):
        self.batch_sizes.append(len(batch))
        return self.net(batch)


@pytest.fixture(scope="module")
def lime_case():
    """Three distinct textured images, a 10-class tiny CNN and targets: maps well above float round-off."""
    net = load_classifier({"arch": TINY_CNN, "classes": 10}).net
    images = torch.cat([textured_image(seed=seed) for seed in (3, 4, 5)])
    return net, images, torch.tensor([4, 1, 8])


def assert_same_maps(got, expected):
    """Equal up to the model's float round-off. This CPU rounds a model batch of one image differently from
    larger batches (logits differ by ~1e-8), which moves the tiny net's weak LIME maps by ~1e-4 of their
    scale; every other batch size gives bit-identical maps here. A sample fed to the wrong image or the
    wrong row would move a map by its whole scale."""
    scale = float(expected.abs().max())
    assert scale > 0
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-3 * scale)


LIME_SAMPLES = 24


def lime(batch_size):
    return Lime(samples=LIME_SAMPLES, segments=12, batch_size=batch_size, seed=7)


def test_lime_batches_that_span_images_give_each_images_own_map(lime_case):
    net, images, targets = lime_case
    per_image = {size: torch.cat([lime(size).explain(net, images[i:i + 1], targets[i:i + 1]) for i in range(3)])
                 for size in range(1, 9)}
    for size in range(2, 9):
        assert_same_maps(per_image[size], per_image[1])
    # 5 and 7 divide no image's 24 samples; 30 holds more than one image; 72 is the whole stream; 100 more
    for size in (5, 7, 30, 72, 100):
        assert_same_maps(lime(size).explain(net, images, targets), per_image[1])


def test_lime_map_of_an_image_alone_equals_its_map_among_three(lime_case):
    net, images, targets = lime_case
    among_three = lime(16).explain(net, images, targets)
    for i in range(3):
        assert_same_maps(lime(16).explain(net, images[i:i + 1], targets[i:i + 1])[0], among_three[i])
    assert not torch.allclose(among_three[0], among_three[1])  # three different images, three different maps


@pytest.mark.parametrize("batch_size", [1, 5, 24, 30, 100])
def test_lime_calls_the_model_once_per_batch_of_the_whole_stream(lime_case, batch_size):
    net, images, targets = lime_case
    forward = CountingForward(net)
    lime(batch_size).explain(forward, images, targets)
    total = len(images) * LIME_SAMPLES
    calls = math.ceil(total / batch_size)
    assert forward.batch_sizes == [batch_size] * (calls - 1) + [total - batch_size * (calls - 1)]
