"""SmoothGrad (Smilkov et al. 2017) through Captum's `NoiseTunnel(Saliency)`."""
from __future__ import annotations

import torch
from captum.attr import NoiseTunnel, Saliency
from torch import nn

from explainers.base import Explainer


class SmoothGrad(Explainer):
    """|mean over noisy copies of d logit_target / d x|, summed over the colour channels.

    As in the paper, the signed gradients are averaged before the absolute value is taken, so
    noise that flips sign cancels; the noise stdev is `stdev` times the image's own value range
    (x_max - x_min). Each image is explained alone, from the same seed, so its map does not depend
    on which other images share its batch; `batch_size` noisy copies go through the model at once,
    which bounds memory at batch_size x one image's activations.
    """

    def __init__(self, samples: int = 16, stdev: float = 0.15, batch_size: int = 16, seed: int = 0):
        super().__init__(seed)
        if samples < 1 or batch_size < 1:
            raise ValueError(f"smooth_grad needs samples >= 1 and batch_size >= 1, got {samples} and {batch_size}")
        if stdev < 0:
            raise ValueError(f"smooth_grad stdev must be >= 0 (a fraction of the input range), got {stdev}")
        self.samples, self.stdev, self.batch_size = int(samples), float(stdev), int(batch_size)

    def _maps(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        tunnel = NoiseTunnel(Saliency(model))
        maps = []
        for image, target in zip(images, targets):
            stdev = self.stdev * float(image.max() - image.min())
            # Captum draws its noise with torch.normal from the global generator and takes none
            # of its own: fork that generator, seed it, and get the caller's state back on exit.
            with torch.random.fork_rng(devices=[image.device] if image.is_cuda else []):
                _seed_generator(image.device, self.seed)
                grads = tunnel.attribute(image[None], nt_type="smoothgrad", nt_samples=self.samples,
                                         nt_samples_batch_size=self.batch_size, stdevs=stdev,
                                         target=int(target), abs=False)
            maps.append(grads[0].abs().sum(dim=0))
        return torch.stack(maps)


def _seed_generator(device: torch.device, seed: int) -> None:
    """Seed only the generator that draws on `device` (torch.manual_seed would reseed every GPU)."""
    if device.type == "cuda":
        torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()].manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)
