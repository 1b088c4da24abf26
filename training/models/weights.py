"""Load every tensor whose name and shape match, and say exactly what was skipped.

Used for ImageNet backbone weights and for fine-tuning from a pre-trained checkpoint (whose
1001-class heads do not fit a 21-class model): partial loads must be visible, never silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from training.pdparams import is_pdparams, read_pdparams, translate

# Containers under which training scripts commonly nest the weights.
STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # file tensor name -> reason
    missing: list[str] = field(default_factory=list)  # model tensors the file did not provide

    def summary(self) -> str:
        shape = sum(1 for reason in self.skipped.values() if reason.startswith("shape"))
        return (f"loaded {len(self.loaded)} tensors; skipped {len(self.skipped)} "
                f"({shape} shape mismatch, {len(self.skipped) - shape} not in model); "
                f"{len(self.missing)} model tensors not in the file")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (weights_only) and unwrap the usual containers and prefixes.

    A PaddleSeg `.pdparams` is read without Paddle and translated to this project's names
    (training/pdparams.py); its tensors fit the `paddleseg` variant of each network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if is_pdparams(path):
        return translate(read_pdparams(path)).state
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in STATE_DICT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a dict of tensors")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ValueError(f"{path} holds no tensors")
    return {k.removeprefix("module."): v for k, v in tensors.items()}


def load_matching(module: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy into `module` every tensor of `state` whose name and shape match; report the rest."""
    own = module.state_dict()
    report = LoadReport()
    accepted = {}
    for name, tensor in state.items():
        if name not in own:
            report.skipped[name] = "not in model"
        elif own[name].shape != tensor.shape:
            report.skipped[name] = f"shape {tuple(tensor.shape)} != model {tuple(own[name].shape)}"
        else:
            accepted[name] = tensor
            report.loaded.append(name)
    report.missing = [name for name in own if name not in accepted]
    module.load_state_dict(accepted, strict=False)
    return report
