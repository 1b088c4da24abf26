"""LIME (Ribeiro et al. 2016) over SLIC superpixels, with the `lime` package doing the statistics."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import sklearn.metrics
import torch
from lime import lime_image
from skimage.segmentation import slic
from torch import nn

from explainers.base import Explainer

DISTANCE = "cosine"  # lime_image's default distance_metric between a sample's switches and the all-on row


class Lime(Explainer):
    """Each superpixel's weight in lime's locally fitted linear model of the target's probability.

    lime segments nothing here: SLIC (`segments`, `compactness`) does, since it gives compact,
    image-covering regions at a chosen count. Per image, as lime's `explain_instance` does, a fresh
    `LimeImageExplainer` seeded with `seed` draws the on/off samples (so an image's map does not
    depend on its batch-mates), switched-off superpixels show their mean colour (lime's default),
    and lime weighs the samples by distance and fits the ridge model. Only the perturbed images are
    built here (`_Neighbourhood`): the `samples` perturbations of every image of one call form one
    stream, cut into model batches of `batch_size` that may span images, so a large batch fills the
    device even when it holds more than one image's samples. LIME only needs forward passes, so
    `model` may be any tensor-in, logits-out callable (the explain stage passes its ONNX Runtime
    session, pipeline/explain/runtime.py).
    `batch_size` (perturbed images per model call) defaults to the fastest batch of bare forward
    passes on a CPU with one thread (docs/measurements.md, "Numbers behind the code's defaults");
    on a GPU raise it (e.g. 256-1024).
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
        neighbourhoods = [self._neighbourhood(image) for image in images]
        probabilities = _probabilities_per_image(model, neighbourhoods, self.batch_size)
        return torch.stack([neighbourhood.weight_map(rows, int(target))
                            for neighbourhood, rows, target in zip(neighbourhoods, probabilities, targets)])

    def _neighbourhood(self, image: torch.Tensor) -> _Neighbourhood:
        """What lime's `explain_instance` prepares before it classifies: superpixels, mean colours, switches."""
        explainer = lime_image.LimeImageExplainer(kernel_width=self.kernel_width, feature_selection="none",
                                                  random_state=self.seed)
        pixels = image.permute(1, 2, 0).cpu().numpy()
        segments = self.segment(pixels)
        n_features = np.unique(segments).shape[0]
        switches = explainer.random_state.randint(0, 2, self.samples * n_features).reshape((self.samples, n_features))
        switches[0, :] = 1  # lime's convention: the first sample is the untouched image
        hidden = _chw_tensor(_mean_colours(pixels, segments), image.device)
        return _Neighbourhood(explainer, segments, switches, image, hidden)

    def segment(self, image: np.ndarray) -> np.ndarray:
        """SLIC superpixels of an HWC image in [0, 1], labelled 0..n-1 without gaps (lime indexes by label)."""
        labels = slic(image, n_segments=self.segments, compactness=self.compactness, start_label=0)
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


class _Neighbourhood:
    """One image's LIME problem: its superpixels, its on/off samples and the lime explainer that drew them.

    A perturbed image is built on the image's device with one gather (each pixel's superpixel switch)
    and one blend `hidden * (1 - keep) + shown * keep`, keep in {0, 1}: exactly the pixels
    `torch.where` picks, without the broadcast `where` that cost a share of LIME's time once the
    forwards were cheap. lime's own `data_labels` instead copies the image in float64 per sample,
    loops over superpixels in numpy and prints a tqdm bar.
    """

    def __init__(self, explainer: lime_image.LimeImageExplainer, segments: np.ndarray, switches: np.ndarray,
                 shown: torch.Tensor, hidden: torch.Tensor):
        self.explainer = explainer
        self.segments = segments  # [H, W] superpixel labels 0..n-1
        self.switches = switches  # [samples, n] 0/1: lime's `data`, which it regresses on
        self.shown, self.hidden = shown, hidden  # [3, H, W]: the image; every pixel in its superpixel's mean colour
        self.segment_ids = torch.from_numpy(segments).to(shown.device, torch.long).flatten()
        self.device_switches = torch.from_numpy(switches).to(shown.device, torch.float32)

    def perturbed_into(self, out: torch.Tensor, start: int, stop: int) -> None:
        """Write samples start..stop-1 as [stop - start, 3, H, W] images into `out`."""
        keep = self.device_switches[start:stop].index_select(1, self.segment_ids).view(-1, 1, *self.segments.shape)
        torch.addcmul(self.hidden * (1 - keep), self.shown, keep, out=out)

    def weight_map(self, probabilities: np.ndarray, target: int) -> torch.Tensor:
        """lime's fit of the target's probability over the samples, each superpixel painted with its weight."""
        distances = sklearn.metrics.pairwise_distances(self.switches, self.switches[:1], metric=DISTANCE).ravel()
        _, fitted, _, _ = self.explainer.base.explain_instance_with_data(
            self.switches, probabilities, distances, target, num_features=self.switches.shape[1],
            feature_selection=self.explainer.feature_selection)
        weights = np.zeros(self.switches.shape[1], dtype=np.float32)
        for segment, weight in fitted:
            weights[segment] = weight
        return torch.from_numpy(weights[self.segments]).to(self.shown.device)


def _probabilities_per_image(model: nn.Module, neighbourhoods: list[_Neighbourhood],
                             batch_size: int) -> Iterator[np.ndarray]:
    """Each image's [samples, classes] probabilities in turn, from model batches that span images.

    The samples of all images form one stream (image 0's, then image 1's, ...) cut into batches of
    `batch_size`; an image's rows are handed out as soon as its last sample is classified, so no more
    than one batch of perturbed images and one batch plus one image's probability rows are held at a time.
    """
    samples = neighbourhoods[0].switches.shape[0]
    total, (height, width) = len(neighbourhoods) * samples, neighbourhoods[0].segments.shape
    held, held_rows = [], 0
    for start in range(0, total, batch_size):
        stop = min(start + batch_size, total)
        batch = neighbourhoods[0].shown.new_empty((stop - start, 3, height, width))
        for index in range(start // samples, (stop - 1) // samples + 1):  # the images this batch touches
            first, last = max(start, index * samples), min(stop, (index + 1) * samples)
            neighbourhoods[index].perturbed_into(batch[first - start:last - start],
                                                 first - index * samples, last - index * samples)
        held.append(_probabilities(model, batch))
        held_rows += stop - start
        while held_rows >= samples:
            rows = np.concatenate(held)
            yield rows[:samples]
            held, held_rows = [rows[samples:]], held_rows - samples


def _probabilities(model: nn.Module, batch: torch.Tensor) -> np.ndarray:
    """Softmax of the model on a device batch, as the float64 numpy rows lime regresses on."""
    with torch.inference_mode():
        return model(batch).softmax(dim=1).double().cpu().numpy()


def _mean_colours(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """lime's `hide_color=None` image: every pixel in its superpixel's mean colour, averaged as lime does
    (np.mean per channel), so the switched-off pixels are the very values lime would use."""
    hidden = image.copy()
    for segment in np.unique(segments):
        inside = segments == segment
        pixels = image[inside]
        hidden[inside] = (np.mean(pixels[:, 0]), np.mean(pixels[:, 1]), np.mean(pixels[:, 2]))
    return hidden


def _chw_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).to(device, torch.float32).permute(2, 0, 1).contiguous()
