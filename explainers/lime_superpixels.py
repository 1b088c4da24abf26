"""LIME (Ribeiro et al. 2016) over SLIC superpixels, with the `lime` package doing the statistics."""
from __future__ import annotations

import numpy as np
import torch
from lime import lime_image
from skimage.segmentation import slic
from torch import nn

from explainers.base import Explainer


class Lime(Explainer):
    """Each superpixel's weight in lime's locally fitted linear model of the target's probability.

    lime segments nothing here: SLIC (`segments`, `compactness`) does, since it gives compact,
    image-covering regions at a chosen count. lime draws the on/off samples, hides switched-off
    superpixels with their mean colour (lime's default), weighs samples by distance and fits the
    ridge model; only the neighbourhood's images are built by `_DeviceNeighbourhood` (see there).
    Each image gets fresh random state from `seed`, so its map does not depend on its batch-mates.
    LIME only needs forward passes, so `model` may be any tensor-in, logits-out callable (the
    explain stage passes its ONNX Runtime session, pipeline/runtime.py).
    `batch_size` defaults to 8, the fastest batch of bare forward passes on this CPU with one thread,
    both for eager PyTorch (256 forwards of EfficientNet-Lite0: 4.5 s at batch 8, 15.9 s at 64) and for
    ONNX Runtime (1.43 s at 8, 1.85 s at 64; results/bench_lime.md); on a GPU raise it.
    """

    needs_gradients = False

    def __init__(self, samples: int = 256, segments: int = 50, compactness: float = 10.0,
                 batch_size: int = 8, kernel_width: float = 0.25, seed: int = 0):
        super().__init__(seed)
        if samples < 2 or segments < 2 or batch_size < 1:
            raise ValueError(f"lime needs samples >= 2, segments >= 2 and batch_size >= 1, "
                             f"got {samples}, {segments} and {batch_size}")
        self.samples, self.segments, self.compactness = int(samples), int(segments), float(compactness)
        self.batch_size, self.kernel_width = int(batch_size), float(kernel_width)
    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._map(model, image, int(target)) for image, target in zip(images, targets)])

    def _map(self, model: nn.Module, image: torch.Tensor, target: int) -> torch.Tensor:
        explainer = _DeviceNeighbourhood(image.device, kernel_width=self.kernel_width, feature_selection="none",
                                         random_state=self.seed)
        explanation = explainer.explain_instance(
            image.permute(1, 2, 0).cpu().numpy(), classifier_fn=lambda batch: _probabilities(model, batch),
            labels=(target,), top_labels=None, num_samples=self.samples, batch_size=self.batch_size,
            segmentation_fn=self.segment, random_seed=self.seed)
        weights = np.zeros(explanation.segments.max() + 1, dtype=np.float32)
        for segment, weight in explanation.local_exp[target]:
            weights[segment] = weight
        return torch.from_numpy(weights[explanation.segments]).to(image.device)

    def segment(self, image: np.ndarray) -> np.ndarray:
        """SLIC superpixels of an HWC image in [0, 1], labelled 0..n-1 without gaps (lime indexes by label)."""
        labels = slic(image, n_segments=self.segments, compactness=self.compactness, start_label=0)
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def _probabilities(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Softmax of the model on a device batch, as the float64 numpy rows lime regresses on."""
    with torch.inference_mode():
        return model(batch).softmax(dim=1).double().cpu().numpy()


class _DeviceNeighbourhood(lime_image.LimeImageExplainer):
    """lime's image explainer with the perturbed images built and classified on the model's device.

    lime's own `data_labels` copies the image in float64 once per sample, loops over superpixels in
    numpy, hands the classifier float64 HWC batches and prints a tqdm bar. This override draws the
    same on/off matrix from the same random state, then builds each batch of `batch_size` images
    with one gather and a blend on the device and hands it to `classifier_fn` as a [b, 3, H, W]
    tensor, so forward passes are the cost. The blend is `shown * keep + hidden * (1 - keep)` with
    keep in {0, 1}, exactly the pixels `torch.where` picks but 7x cheaper on this CPU (a broadcast
    `where` cost 12% of LIME's time once ONNX Runtime made the forwards cheap).
    """

    def __init__(self, device: torch.device, **kwargs):
        super().__init__(**kwargs)
        self.device = device

    def data_labels(self, image, fudged_image, segments, classifier_fn, num_samples, batch_size=10):
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1  # lime's convention: the first sample is the untouched image
        shown, hidden = _chw_tensor(image, self.device), _chw_tensor(fudged_image, self.device)
        segment_ids = torch.from_numpy(segments).to(self.device, torch.long).flatten()
        switches = torch.from_numpy(data).to(self.device, torch.float32)
        probabilities = []
        for start in range(0, num_samples, batch_size):
            keep = switches[start:start + batch_size].index_select(1, segment_ids).view(-1, 1, *segments.shape)
            probabilities.append(classifier_fn(torch.addcmul(hidden * (1 - keep), shown, keep)))
        return data, np.concatenate(probabilities)


def _chw_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).to(device, torch.float32).permute(2, 0, 1).contiguous()
