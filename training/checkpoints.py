"""Initialise a fine-tuning model from a pre-trained checkpoint: every tensor whose shape matches.

Fine-tuning PSSL weights on VOC changes the number of classes (1001 -> 21), so the heads' last
layers cannot be loaded; they are skipped and listed rather than failing the load, as the
reference does when it loads `model.pretrained` into a model with another class count. The
matching itself is `training.models.weights` (shared with ImageNet backbone loading); this adds
one-line errors for unusable files and the per-tensor listing of what was skipped.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from training.models.weights import LoadReport, load_matching, read_state_dict


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or holds no model weights; the message names the file."""


def load_pretrained(model: nn.Module, path: str | Path) -> LoadReport:
    """Load a trainer checkpoint (its `model` entry) or a plain state_dict into `model` where shapes match."""
    try:
        state = read_state_dict(path)
    except FileNotFoundError:
        raise CheckpointError(f"pre-trained checkpoint not found: {path}") from None
    except Exception as error:  # torch.load raises many types for a corrupt or foreign file
        raise CheckpointError(f"pre-trained checkpoint {path} unusable: {type(error).__name__}: {error}") from None
    report = load_matching(model, state)
    if not report.loaded:
        raise CheckpointError(f"no tensor of {path} fits the model ({report.summary()}): another network?")
    return report


def describe(report: LoadReport) -> str:
    """The summary line, then one line per skipped checkpoint tensor and per model tensor left as initialised."""
    lines = [report.summary()]
    lines += [f"  skipped {name}: {reason}" for name, reason in report.skipped.items()]
    lines += [f"  not in checkpoint, kept as initialised: {name}" for name in report.missing]
    return "\n".join(lines)
